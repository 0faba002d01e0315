/**
 * Retries, timeouts and the time budget through the real server, with small real delays and measured
 * bounds: what is retried, what is not, how long waits take, and that nothing runs past the budget.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { addClient, addProvider, addRoute, chat, secret, setPolicy } from '../gateway/harness.js'
import { eventually, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('retries and timeouts (e2e)', () => {
  const data = tempDataDir()
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let proxy: RunningProxy
  let key: string

  beforeAll(async () => {
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, [{ label: 'a1', priority: 0 }, { label: 'a2', priority: 1 }])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await addRoute(data.dir, 'solo', ['beta/up-b'])
    await setPolicy(data.dir, 'global', {
      keys: { strategy: 'priority' },
      retry: { max_attempts: 3, backoff_ms: { base: 20, max: 100 }, retry_after_cap_ms: 2000 },
      timeouts_ms: { first_byte: 300, total: 600, budget: 1500 },
      // these tests are about retries; keep circuits out of the way
      circuit: { consecutive_failures: 100, min_requests: 1000 },
    })
    key = await addClient(data.dir, 'app')
    proxy = await startTestProxy(data.dir)
  })
  afterEach(() => {
    alpha.heal()
    beta.heal()
  })
  afterAll(async () => {
    await proxy.close()
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  it('does not retry a 400: one upstream call, the error passes through', async () => {
    const before = alpha.count() + beta.count()
    alpha.fail({ status: 400 })
    const r = await chat(proxy.url, key, 'm')
    expect(r.status).toBe(400)
    expect(r.body.error.type).toBe('invalid_request_error')
    expect(alpha.count() + beta.count() - before).toBe(1)
  })

  it('retries a 5xx on the next key and then the next provider', async () => {
    alpha.fail({ status: 500 })
    const r = await chat(proxy.url, key, 'm')
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by beta with ${secret('beta', 'b1')}`)
    expect(r.headers.get('x-proxy-attempts')).toBe('3')
    expect(r.headers.get('x-proxy-fallback')).toBe('provider')
    expect(r.headers.get('x-proxy-provider')).toBe('beta')
    expect(r.headers.get('x-proxy-model')).toBe('up-b')
  })

  it('waits for a 503 Retry-After before calling the same upstream again', async () => {
    beta.fail({ status: 503, retryAfter: '1', times: 1 })
    const r = await chat(proxy.url, key, 'solo')
    expect(r.status).toBe(200)
    expect(r.headers.get('x-proxy-attempts')).toBe('2')
    expect(r.ms).toBeGreaterThanOrEqual(990)
    const [first, second] = beta.requests.slice(-2)
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(990)
  })

  it('times out an upstream that sends no headers (first_byte) and falls back', async () => {
    alpha.fail({ key: secret('alpha', 'a1'), hang: 'before_headers' })
    const r = await chat(proxy.url, key, 'm')
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by alpha with ${secret('alpha', 'a2')}`)
    expect(r.ms).toBeGreaterThanOrEqual(290)
    expect(r.ms).toBeLessThan(1200)
  })

  it('times out an upstream that sends headers but no body (total) and falls back', async () => {
    alpha.fail({ key: secret('alpha', 'a1'), hang: 'after_headers' })
    const r = await chat(proxy.url, key, 'm')
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by alpha with ${secret('alpha', 'a2')}`)
    // a lower bound with slack: timers on a loaded 2-core machine are not exact to the millisecond
    expect(r.ms).toBeGreaterThanOrEqual(500)
    expect(r.ms).toBeLessThan(1400)
  })

  it('treats a reset connection as retryable', async () => {
    alpha.fail({ key: secret('alpha', 'a1'), reset: true })
    const r = await chat(proxy.url, key, 'm')
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by alpha with ${secret('alpha', 'a2')}`)
  })

  it('never runs past the time budget, however the upstreams stall', async () => {
    alpha.fail({ hang: 'before_headers' })
    beta.fail({ hang: 'before_headers' })
    await setPolicy(data.dir, 'slow', { retry: { max_attempts: 10 }, timeouts_ms: { first_byte: 5000, budget: 700 } })
    const other = await addClient(data.dir, 'slow-client', ['--policy', 'slow'])
    await eventually(() => [...proxy.config.current().clientsByHash.values()].some((c) => c.name === 'slow-client'), Boolean)
    const r = await chat(proxy.url, other, 'm')
    expect(r.status).toBe(504)
    expect(r.body.error.code).toBe('upstream_timeout')
    expect(r.ms).toBeGreaterThanOrEqual(690)
    expect(r.ms).toBeLessThan(900)
  })
})
