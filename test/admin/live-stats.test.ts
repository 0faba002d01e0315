import { describe, expect, it } from 'vitest'
import { bucketMs, latencyBucket, LiveStats } from '../../src/telemetry/live-stats.js'
import type { RequestRecord } from '../../src/telemetry/request-record.js'

const T0 = 1_800_000_000_000

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    requestId: 'req_x',
    method: 'POST',
    path: '/v1/chat/completions',
    status: 200,
    ms: 100,
    client: 'app',
    model: 'gpt-4o-mini',
    stream: false,
    provider: 'up',
    upstreamModel: 'gpt-4o-mini',
    key: 'main',
    attempts: [{ provider: 'up', upstreamModel: 'gpt-4o-mini', key: 'main', ms: 90 }],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
    error: null,
    ip: '127.0.0.1',
    ...over,
  }
}

function clock(start = T0) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms), set: (t: number) => (now = t) }
}

describe('live stats', () => {
  it('counts API requests per second with rates over the time the window covers', () => {
    const c = clock()
    const live = new LiveStats({ now: c.now })
    c.advance(10_000)
    for (let i = 0; i < 20; i++) live.requestDone(record({ endedAt: c.now() - 5000 }))
    for (let i = 0; i < 10; i++) live.requestDone(record({ endedAt: c.now() - 1000, status: 502, error: { type: 'upstream_error', code: 'bad_gateway', message: 'x' } }))
    const r = live.report(60)
    expect(r.totals).toEqual({ requests: 30, errors: 10, rateLimited: 0, tokens: 360 })
    expect(r.window).toMatchObject({ requests: 30, errors: 10, tokens: 360, requestsPerS: 3, errorsPerS: 1, tokensPerS: 36 })
    expect(r.window.errorRate).toBeCloseTo(1 / 3)
    expect(r.series.requests).toHaveLength(60)
    expect(r.series.requests.at(-5)).toBe(20)
    expect(r.series.requests.at(-1)).toBe(10)
    expect(r.series.errors.at(-1)).toBe(10)
    expect(r.uptimeS).toBe(10)
  })

  it('ignores everything outside /v1 (admin calls, health checks)', () => {
    const live = new LiveStats()
    live.requestDone(record({ path: '/admin/v1/stats', method: 'GET' }))
    live.requestDone(record({ path: '/metrics', method: 'GET' }))
    expect(live.report().totals.requests).toBe(0)
  })

  it('drops seconds that leave the window and reuses their buckets', () => {
    const c = clock()
    const live = new LiveStats({ now: c.now, historyS: 60 })
    live.requestDone(record({ endedAt: c.now() }))
    c.advance(30_000)
    expect(live.report(60).window.requests).toBe(1)
    c.advance(31_000)
    expect(live.report(60).window.requests).toBe(0)
    // The same ring slot, a minute later, starts from zero.
    live.requestDone(record({ endedAt: c.now() }))
    expect(live.report(60).window.requests).toBe(1)
    expect(live.report(60).totals.requests).toBe(2)
  })

  it('reports latency percentiles within the histogram resolution', () => {
    const c = clock()
    const live = new LiveStats({ now: c.now })
    c.advance(60_000)
    for (let ms = 1; ms <= 1000; ms++) live.requestDone(record({ ms, endedAt: c.now() - (ms % 50) * 1000 }))
    const p = live.report(60).window.latencyMs!
    expect(p.p50).toBeGreaterThan(500 * 0.9)
    expect(p.p50).toBeLessThan(500 * 1.1)
    expect(p.p95).toBeGreaterThan(950 * 0.9)
    expect(p.p95).toBeLessThan(950 * 1.1)
    expect(p.p99).toBeGreaterThan(990 * 0.9)
    expect(p.p99).toBeLessThan(990 * 1.1)
    expect(live.report(60, c.now() + 120_000).window.latencyMs).toBeNull()
  })

  it('buckets latencies on a log scale, four per doubling', () => {
    expect(latencyBucket(0)).toBe(0)
    expect(latencyBucket(1)).toBe(8)
    expect(latencyBucket(2)).toBe(12)
    expect(latencyBucket(1e12)).toBe(87)
    for (const ms of [0.5, 3, 47, 999, 12_345]) expect(Math.abs(bucketMs(latencyBucket(ms)) - ms) / ms).toBeLessThan(0.1)
  })

  it('counts rate-limit hits: 429s with rate_limit_exceeded or insufficient_quota', () => {
    const live = new LiveStats()
    const limited = (code: string, status = 429) => record({ status, provider: null, key: null, attempts: [], usage: null, error: { type: 'rate_limit_error', code, message: 'slow down' } })
    live.requestDone(limited('rate_limit_exceeded'))
    live.requestDone(limited('insufficient_quota'))
    live.requestDone(limited('something_else'))
    live.requestDone(limited('rate_limit_exceeded', 503))
    const r = live.report()
    expect(r.totals.rateLimited).toBe(2)
    expect(r.window.rateLimited).toBe(2)
  })

  it('does not count a client that went away (499) as an error, but a stream that ended with an error event', () => {
    const live = new LiveStats()
    live.requestDone(record({ status: 499, stream: true }))
    live.requestDone(record({ status: 200, stream: true, error: { type: 'upstream_error', code: 'upstream_error', message: 'cut' } }))
    expect(live.report().totals.errors).toBe(1)
    expect(live.report().recent.map((r) => r.error)).toEqual(['upstream_error', null])
  })

  it('books every attempt to its provider and key; a served stream lasts until it ended', () => {
    const live = new LiveStats()
    live.requestDone(
      record({
        provider: 'beta',
        key: 'b1',
        stream: true,
        ms: 2000,
        servedMs: 300,
        attempts: [
          { provider: 'alpha', upstreamModel: 'm', key: 'a1', ms: 100, error: { status: 500, code: 'server_error', message: 'x' } },
          { provider: 'beta', upstreamModel: 'm', key: 'b1', ms: 150 },
        ],
      }),
    )
    const providers = live.report().providers
    const alpha = providers.find((p) => p.name === 'alpha')!
    const beta = providers.find((p) => p.name === 'beta')!
    expect(alpha).toMatchObject({ requests: 1, errors: 1, keys: [{ label: 'a1', requests: 1, errors: 1, latencyMsAvg: 100 }] })
    expect(beta).toMatchObject({ requests: 1, errors: 0, keys: [{ label: 'b1', requests: 1, errors: 0, latencyMsAvg: 1850 }] })
    expect(beta.latencyMs!.p50 / 1850).toBeGreaterThan(0.9)
  })

  it('keeps the most recent requests, newest first, as copies', () => {
    const live = new LiveStats({ recent: 50 })
    for (let i = 0; i < 120; i++) live.requestDone(record({ requestId: `req_${i}`, endedAt: T0 + i }))
    const recent = live.report().recent
    expect(recent).toHaveLength(50)
    expect(recent[0]).toMatchObject({ id: 'req_119', at: T0 + 119, client: 'app', model: 'gpt-4o-mini', provider: 'up', status: 200, ms: 100, tokens: 12 })
    expect(recent.at(-1)!.id).toBe('req_70')
    live.requestDone(record({ requestId: 'req_new' }))
    expect(recent[0]!.id).toBe('req_119')
  })

  it('follows open streams', () => {
    const live = new LiveStats()
    live.streamOpened()
    live.streamOpened()
    live.streamClosed()
    expect(live.report().activeStreams).toBe(1)
    live.streamClosed()
    live.streamClosed()
    expect(live.activeStreams).toBe(0)
  })

  it('records a request in well under a microsecond on average', () => {
    const live = new LiveStats()
    const r = record()
    live.requestDone(r)
    const n = 200_000
    const started = performance.now()
    for (let i = 0; i < n; i++) live.requestDone(r)
    const perRequestUs = ((performance.now() - started) * 1000) / n
    expect(perRequestUs).toBeLessThan(5)
  })
})
