/**
 * The capture store's settings and the offloader's bounds, against real servers: s3rver for a store
 * that works, and a socket that accepts and never answers for one that hangs.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { objectStoreSettings, openObjectStore, type ObjectStore } from '../../src/store/object-store.js'
import { auditRowValues, auditValueIndex, type NewAuditRow } from '../../src/store/repos/audit.js'
import { CaptureOffload, type CaptureUpload } from '../../src/telemetry/capture-offload.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { createMetrics } from '../../src/telemetry/metrics.js'
import { startTestS3, type TestS3 } from '../fakes/s3-server.js'
import { parseScrape } from './scrape.js'

describe('capture store settings', () => {
  it('reads bucket and prefix, forces path-style with an endpoint, and takes the region from AWS_REGION', () => {
    expect(objectStoreSettings('s3://my-bucket/audit/bodies/', { PROXY_S3_ENDPOINT: 'http://127.0.0.1:9000', AWS_REGION: 'eu-west-1' })).toMatchObject({
      bucket: 'my-bucket',
      prefix: 'audit/bodies/',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      region: 'eu-west-1',
      credentials: null,
    })
    expect(objectStoreSettings('s3://my-bucket', {})).toMatchObject({ prefix: '', endpoint: null, forcePathStyle: false, region: 'us-east-1' })
    expect(objectStoreSettings('s3://my-bucket', { PROXY_S3_FORCE_PATH_STYLE: 'on', AWS_DEFAULT_REGION: 'ap-south-1' })).toMatchObject({ forcePathStyle: true, region: 'ap-south-1' })
    expect(objectStoreSettings('s3://b-1/p', { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' }).credentials).toEqual({ accessKeyId: 'id', secretAccessKey: 'secret' })
  })

  it('refuses what is not an s3:// bucket URL, a bad endpoint or a bad path-style switch, saying what it takes', () => {
    for (const bad of ['https://bucket/prefix', 's3://', 's3://Upper/x', 's3://a/x', 'bucket/prefix']) {
      expect(() => objectStoreSettings(bad, {}), bad).toThrow(/takes s3:\/\/bucket or s3:\/\/bucket\/prefix/)
    }
    expect(() => objectStoreSettings('s3://bucket', { PROXY_S3_ENDPOINT: '127.0.0.1:9000' })).toThrow(/PROXY_S3_ENDPOINT takes a URL/)
    expect(() => objectStoreSettings('s3://bucket', { PROXY_S3_FORCE_PATH_STYLE: 'maybe' })).toThrow(/PROXY_S3_FORCE_PATH_STYLE must be on or off/)
  })
})

function row(requestId: string, request: string | null, response: string | null): NewAuditRow {
  return {
    request_id: requestId, ts: '2026-12-07T05:00:00.000Z', method: 'POST', path: '/v1/chat/completions', client: 'app', ip: null, model: 'm', provider: 'p',
    upstream_model: 'm', key_label: 'k', stream: 0, status: 200, latency_ms: 1, upstream_ms: 1, ttft_ms: null, prompt_tokens: 1, completion_tokens: 1,
    total_tokens: 2, cost_usd: 0, attempts: 1, fallback: null, error_code: null, error_message: null, request_body: request, response_body: response,
    cache: null, saved_usd: null, request_body_key: null, request_body_bytes: null, response_body_key: null, response_body_bytes: null, capture_dropped: null, trace_id: null,
  }
}

/** What the audit writer does with a batch: take each row, build its values, upload. */
async function offloadBatch(offload: CaptureOffload, rows: NewAuditRow[]): Promise<unknown[][]> {
  offload.begin()
  const uploads: CaptureUpload[] = []
  const values = rows.map((r) => {
    const moved = offload.take(r)
    const v = auditRowValues(r)
    for (const m of moved ?? []) uploads.push({ ...m, values: v })
    return v
  })
  await offload.store(uploads)
  return values
}

const at = (values: unknown[], column: Parameters<typeof auditValueIndex>[0]) => values[auditValueIndex(column)]
const dropped = (registry: Registry) => registry.metrics().then((text) => parseScrape(text))

describe('capture offload', () => {
  let s3: TestS3
  let objects: ObjectStore
  let hanging: Server
  let hangingPort = 0
  const connections: Socket[] = []

  beforeAll(async () => {
    s3 = await startTestS3('offload')
    objects = await openObjectStore(objectStoreSettings('s3://offload/bodies', s3.env))
    hanging = createServer((socket) => connections.push(socket))
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    hangingPort = (hanging.address() as { port: number }).port
  })
  afterAll(async () => {
    objects?.close()
    for (const s of connections) s.destroy()
    await new Promise<void>((resolve) => hanging.close(() => resolve()))
    await s3?.cleanup()
  })

  it('moves only bodies over the inline cap, measured in UTF-8 bytes, and uploads them under the prefix', async () => {
    const registry = new Registry()
    const offload = new CaptureOffload({ objects, inlineMax: 100, logger: silentLogger(), metrics: createMetrics(registry, { config: () => { throw new Error('unused') }, processMetrics: false }) })
    // 40 three-byte characters: 40 units of text, 120 bytes
    const wide = '€'.repeat(40)
    const [small, big] = await offloadBatch(offload, [row('r-small', 'x'.repeat(100), null), row('r-big', wide, 'y'.repeat(50))])
    expect([at(small!, 'request_body'), at(small!, 'request_body_key')]).toEqual(['x'.repeat(100), null])
    expect(at(big!, 'request_body')).toBeNull()
    expect(at(big!, 'request_body_bytes')).toBe(120)
    expect(at(big!, 'request_body_key')).toMatch(/^bodies\/2026-12-07\/r-big-.*\.request\.json$/)
    expect(at(big!, 'response_body')).toBe('y'.repeat(50))
    expect(await s3.keys('bodies/')).toEqual([at(big!, 'request_body_key')])
    const scrape = await dropped(registry)
    expect(scrape.sum('proxy_capture_dropped_total')).toBe(0)
    // every reason is exported from the start
    expect(scrape.samples('proxy_capture_dropped_total').map((s) => s.labels?.reason).sort()).toEqual(['error', 'queue_full', 'timeout', 'unavailable'])
  })

  it('drops bodies past the per-batch bound (queue_full) and keeps their size in the row', async () => {
    const offload = new CaptureOffload({ objects, inlineMax: 10, maxPending: 1, logger: silentLogger() })
    const [values] = await offloadBatch(offload, [row('r-bound', 'a'.repeat(20), 'b'.repeat(30))])
    expect(at(values!, 'request_body_key')).not.toBeNull()
    expect([at(values!, 'response_body'), at(values!, 'response_body_key'), at(values!, 'response_body_bytes'), at(values!, 'capture_dropped')]).toEqual([null, null, 30, 'queue_full'])
    expect(offload.dropped).toBe(1)
    // the bound is per batch
    const [next] = await offloadBatch(offload, [row('r-bound-2', 'c'.repeat(20), null)])
    expect(at(next!, 'request_body_key')).not.toBeNull()
  })

  it('gives up on an upload the store does not answer in time (timeout), then leaves the store alone for a while (unavailable)', async () => {
    const stuck = await openObjectStore(objectStoreSettings('s3://offload/x', { ...s3.env, PROXY_S3_ENDPOINT: `http://127.0.0.1:${hangingPort}` }))
    const registry = new Registry()
    const offload = new CaptureOffload({ objects: stuck, inlineMax: 10, timeoutMs: 300, pauseMs: 60_000, logger: silentLogger(), metrics: createMetrics(registry, { config: () => { throw new Error('unused') }, processMetrics: false }) })
    try {
      const [values] = await offloadBatch(offload, [row('r-hang', 'a'.repeat(20), null)])
      expect([at(values!, 'request_body_key'), at(values!, 'request_body_bytes'), at(values!, 'capture_dropped')]).toEqual([null, 20, 'timeout'])
      const seen = connections.length
      expect(seen).toBeGreaterThan(0)

      const [later] = await offloadBatch(offload, [row('r-later', 'b'.repeat(20), null)])
      expect(at(later!, 'capture_dropped')).toBe('unavailable')
      expect(connections.length).toBe(seen)
      const scrape = await dropped(registry)
      expect(scrape.value('proxy_capture_dropped_total', { reason: 'timeout' })).toBe(1)
      expect(scrape.value('proxy_capture_dropped_total', { reason: 'unavailable' })).toBe(1)
    } finally {
      stuck.close()
    }
  })

  it('ends a batch at its deadline however long each upload may take', async () => {
    const stuck = await openObjectStore(objectStoreSettings('s3://offload/x', { ...s3.env, PROXY_S3_ENDPOINT: `http://127.0.0.1:${hangingPort}` }))
    const offload = new CaptureOffload({ objects: stuck, inlineMax: 10, timeoutMs: 60_000, deadlineMs: 300, concurrency: 1, logger: silentLogger() })
    try {
      const [first, second] = await offloadBatch(offload, [row('r-d1', 'a'.repeat(20), null), row('r-d2', 'b'.repeat(20), null)])
      expect(at(first!, 'capture_dropped')).toBe('timeout')
      // not tried once the first had failed
      expect(at(second!, 'capture_dropped')).toBe('unavailable')
      expect(offload.dropped).toBe(2)
    } finally {
      stuck.close()
    }
  })
})
