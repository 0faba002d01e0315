/**
 * The ObjectStore on the AWS SDK v3 S3 client: AWS itself, or any S3-compatible host through
 * PROXY_S3_ENDPOINT. Loaded only through openObjectStore (object-store.ts).
 */
import { DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { ObjectStore, ObjectStoreSettings } from './object-store.js'

/** DeleteObjects takes at most this many keys a call */
const DELETE_BATCH = 1000
/** A host that does not answer must not hold a batch of uploads for long: the audit writer waits on them. */
const CONNECT_TIMEOUT_MS = 2000
const REQUEST_TIMEOUT_MS = 10_000

export function s3ObjectStore(settings: ObjectStoreSettings): ObjectStore {
  // The SDK is pinned to a release that runs on Node 20; its notice that later releases will not is for
  // whoever upgrades the dependency, not for the operator reading the server's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const client = new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    // one retry: an outage is answered by dropping bodies, not by waiting
    maxAttempts: 2,
    // checksums only where S3 requires them: several S3-compatible hosts reject the newer trailing ones
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
  })
  const { bucket } = settings
  const where = (key: string) => `s3://${bucket}/${key}`

  return {
    location: `s3://${bucket}/${settings.prefix}`,
    prefix: settings.prefix,
    async put(key, body, signal) {
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json; charset=utf-8' }), { abortSignal: signal })
      } catch (err) {
        throw failure(`write ${where(key)}`, err)
      }
    },
    async get(key) {
      try {
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        return (await answer.Body?.transformToString('utf8')) ?? ''
      } catch (err) {
        if (errorName(err) === 'NoSuchKey' || httpStatus(err) === 404) return null
        throw failure(`read ${where(key)}`, err)
      }
    },
    async delete(keys) {
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        const batch = keys.slice(i, i + DELETE_BATCH)
        let errors: Array<{ Key?: string; Code?: string; Message?: string }>
        try {
          const answer = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }))
          errors = (answer.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey')
        } catch (err) {
          throw failure(`delete ${batch.length} object(s) from s3://${bucket}`, err)
        }
        if (errors.length > 0) {
          const first = errors[0]!
          throw new Error(`Could not delete ${errors.length} of ${batch.length} object(s) from s3://${bucket}, e.g. ${first.Key}: ${first.Code ?? 'error'} ${first.Message ?? ''}`.trim())
        }
      }
    },
    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }))
      } catch (err) {
        throw failure(`reach s3://${bucket}`, err)
      }
    },
    close() {
      client.destroy()
    },
  }
}

/** An error naming what was tried and why it failed, with a hint for the common causes; never a credential. */
function failure(what: string, err: unknown): Error {
  const name = errorName(err)
  const status = httpStatus(err)
  const detail = err instanceof Error ? err.message : String(err)
  const hint =
    name === 'NoSuchBucket'
      ? ' The bucket does not exist: create it, or fix --capture-store.'
      : name === 'CredentialsProviderError' || status === 403
        ? ' Check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or an instance role) and their rights on the bucket.'
        : ''
  return new Error(`Could not ${what}: ${name && !detail.startsWith(name) ? `${name}: ` : ''}${detail || `HTTP ${status ?? '?'}`}.${hint}`, { cause: err })
}

function errorName(err: unknown): string {
  const name = (err as { name?: unknown } | null)?.name
  return typeof name === 'string' && name !== 'Error' ? name : ''
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode
}
