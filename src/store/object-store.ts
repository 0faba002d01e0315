/**
 * Where captured bodies too large for an audit row go: a bucket on S3 or an S3-compatible host
 * (MinIO, Ceph, R2…), named as `s3://bucket/prefix` by `--capture-store` or PROXY_CAPTURE_STORE.
 * This module is light on purpose: the AWS SDK is loaded by openObjectStore alone, so a server without
 * a capture store, and every command that does not read one, never load it.
 */
import { randomUUID } from 'node:crypto'
import { invalidRequest } from '../core/errors.js'
import type { Env } from './paths.js'

/** The few things the audit trail asks of an object store. */
export interface ObjectStore {
  /** `s3://bucket/prefix`, for messages */
  readonly location: string
  /** '' or ending in '/': where new keys go (see captureObjectKey) */
  readonly prefix: string
  /** Writes one object; rejects when the store did not take it (or `signal` gave up first). */
  put(key: string, body: string, signal?: AbortSignal): Promise<void>
  /** The object's text, or null when there is no such object. */
  get(key: string): Promise<string | null>
  /** Deletes the objects (absent ones are fine); rejects when any could not be deleted. */
  delete(keys: readonly string[]): Promise<void>
  /** Resolves when the bucket answers; rejects with a message an operator can act on. */
  check(): Promise<void>
  close(): void
}

export interface ObjectStoreSettings {
  /** as given: s3://bucket/prefix */
  url: string
  bucket: string
  /** '' or ending in '/' */
  prefix: string
  /** PROXY_S3_ENDPOINT: a MinIO or other S3-compatible host; AWS's endpoint for the region when absent */
  endpoint: string | null
  /** bucket in the path rather than the host name: forced with an endpoint, else PROXY_S3_FORCE_PATH_STYLE */
  forcePathStyle: boolean
  region: string
  /** from the proxy's environment when it names a key pair; else the SDK's default credential chain */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null
}

export const DEFAULT_S3_REGION = 'us-east-1'

/** Parses `s3://bucket/prefix` and the PROXY_S3_* / AWS_* variables beside it; a clear error otherwise. */
export function objectStoreSettings(url: string, env: Env): ObjectStoreSettings {
  const m = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/.exec(url.trim())
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1]!)) {
    throw invalidRequest(`--capture-store / PROXY_CAPTURE_STORE takes s3://bucket or s3://bucket/prefix (a bucket name of 3-63 lowercase letters, digits, dots and dashes), not '${url}'.`)
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '')
  const endpoint = env.PROXY_S3_ENDPOINT?.trim() || null
  if (endpoint !== null && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw invalidRequest(`PROXY_S3_ENDPOINT takes a URL such as http://127.0.0.1:9000, not '${endpoint}'.`)
  }
  const pathStyle = env.PROXY_S3_FORCE_PATH_STYLE?.toLowerCase()
  if (pathStyle !== undefined && pathStyle !== '' && !['1', 'true', 'on', 'yes', '0', 'false', 'off', 'no'].includes(pathStyle)) {
    throw invalidRequest(`PROXY_S3_FORCE_PATH_STYLE must be on or off, not '${env.PROXY_S3_FORCE_PATH_STYLE}'.`)
  }
  const keyId = env.AWS_ACCESS_KEY_ID
  const secret = env.AWS_SECRET_ACCESS_KEY
  return {
    url: url.trim(),
    bucket: m[1]!,
    prefix: prefix ? `${prefix}/` : '',
    endpoint,
    // MinIO and most other hosts serve no per-bucket host names
    forcePathStyle: endpoint !== null || ['1', 'true', 'on', 'yes'].includes(pathStyle ?? ''),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_S3_REGION,
    credentials: keyId && secret ? { accessKeyId: keyId, secretAccessKey: secret, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } : null,
  }
}

/** The settings for `flag`, else PROXY_CAPTURE_STORE; null when neither names a store. */
export function captureStoreFrom(flag: string | undefined, env: Env): ObjectStoreSettings | null {
  const url = flag ?? env.PROXY_CAPTURE_STORE
  return url ? objectStoreSettings(url, env) : null
}

/** Connects to the bucket (loading the AWS SDK now). Nothing is sent until the first call. */
export async function openObjectStore(settings: ObjectStoreSettings): Promise<ObjectStore> {
  const { s3ObjectStore } = await import('./s3-object-store.js')
  return s3ObjectStore(settings)
}

/**
 * A new object's key: under the prefix, by UTC day (so a bucket lifecycle rule or a listing can work
 * by date), unique even when a client reuses its request id, which is kept only as a readable hint.
 */
export function captureObjectKey(prefix: string, ts: string, requestId: string, which: 'request' | 'response'): string {
  const hint = requestId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)
  return `${prefix}${ts.slice(0, 10)}/${hint}-${randomUUID()}.${which}.json`
}
