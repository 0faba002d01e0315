/**
 * A real S3-protocol server for the capture-store tests: s3rver on 127.0.0.1, a free port and a temp
 * directory, with one bucket. `stop()` ends it mid-run (open keep-alive connections cut, as a crash
 * would); `env` is what points the proxy (and the CLI) at it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import S3rver from 's3rver'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'

export interface TestS3 {
  endpoint: string
  bucket: string
  /** PROXY_S3_ENDPOINT and s3rver's fixed credentials */
  env: Record<string, string>
  /** every key in the bucket under `prefix` */
  keys(prefix?: string): Promise<string[]>
  /** a client of the bucket of its own, for checks the proxy does not make */
  client: S3Client
  stop(): Promise<void>
  cleanup(): Promise<void>
}

export async function startTestS3(bucket = 'captures'): Promise<TestS3> {
  // as the proxy does (s3-object-store.ts): the pinned SDK's notice about later releases is noise here
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const dir = mkdtempSync(path.join(tmpdir(), 'proxy-s3-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', maxAttempts: 1 })
  let running = true
  const stop = async () => {
    if (!running) return
    running = false
    const closed = server.close()
    server.httpServer?.closeAllConnections()
    await closed
  }
  return {
    endpoint,
    bucket,
    env: { PROXY_S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_REGION: 'us-east-1' },
    client,
    async keys(prefix = '') {
      const out: string[] = []
      let token: string | undefined
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
        for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key)
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      return out.sort()
    },
    stop,
    async cleanup() {
      await stop()
      client.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
