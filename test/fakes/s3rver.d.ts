/** The part of s3rver (an S3-protocol server on the local disk) the tests use; the package ships no types. */
declare module 's3rver' {
  import type { Server } from 'node:http'
  import type { AddressInfo } from 'node:net'
  interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    configureBuckets?: Array<{ name: string }>
    resetOnClose?: boolean
  }
  export default class S3rver {
    constructor(options: S3rverOptions)
    readonly httpServer: Server | undefined
    run(): Promise<AddressInfo>
    close(): Promise<void>
  }
}
