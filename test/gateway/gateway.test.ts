/**
 * The gateway on its own, over real HTTP to fake upstreams, with an injected clock (sleeps are recorded
 * instead of waited) and an injected RNG, so backoff and circuit timing are checked exactly.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { tempDataDir } from '../helpers/proxy.js'
import { addProvider, addRoute, directGateway, manualClock, secret, setPolicy } from './harness.js'

describe('gateway retries, backoff and fallback (injected clock)', () => {
  let data: ReturnType<typeof tempDataDir>
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let gw: Awaited<ReturnType<typeof directGateway>> | null = null

  beforeEach(async () => {
    data = tempDataDir()
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, ['a1', 'a2'])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await addRoute(data.dir, 'solo', ['beta/up-b'])
  })
  afterEach(async () => {
    await gw?.close()
    gw = null
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  const open = async (policy: unknown, random = () => 0.5) => {
    await setPolicy(data.dir, 'global', policy)
    const time = manualClock()
    gw = await directGateway(data.dir, { clock: time.clock, random })
    return time
  }

  it('retries a failing provider with exponential full-jitter backoff', async () => {
    const time = await open({ keys: { strategy: 'priority' }, retry: { max_attempts: 3, backoff_ms: { base: 100, max: 1000 } } })
    beta.fail({ status: 500, times: 2 })
    const r = await gw!.call('solo')
    expect(r.ok).toBe(true)
    expect(r.attempts.map((a) => a.error?.reason ?? 'ok')).toEqual(['server_error', 'server_error', 'ok'])
    // random() = 0.5: half of 100, then half of 200
    expect(time.sleeps).toEqual([50, 100])
    expect(r.attempts.map((a) => a.waitedMs ?? 0)).toEqual([0, 50, 100])
  })

  it('caps the backoff ceiling at backoff_ms.max', async () => {
    const time = await open({ retry: { max_attempts: 5, backoff_ms: { base: 400, max: 1000 } } }, () => 0.999)
    beta.fail({ status: 502, times: 4 })
    expect((await gw!.call('solo')).ok).toBe(true)
    expect(time.sleeps).toEqual([399, 799, 999, 999])
  })

  it('tries the next key at once after a key fault, and backs off before the same provider after a 5xx', async () => {
    const time = await open({ keys: { strategy: 'priority' }, retry: { max_attempts: 4, backoff_ms: { base: 100, max: 1000 } } })
    alpha.fail({ key: secret('alpha', 'a1'), status: 503 })
    const r = await gw!.call('m')
    expect(r.ok && r.served.key).toBe('a2')
    expect(r.ok && r.served.fallback).toBe('key')
    expect(time.sleeps).toEqual([50]) // a2 is on the provider that just failed
  })

  it('falls back to the next target without waiting', async () => {
    const time = await open({ keys: { strategy: 'priority' }, retry: { max_attempts: 4 } })
    alpha.fail({ status: 500 })
    const r = await gw!.call('m')
    expect(r.ok && r.served.provider).toBe('beta')
    expect(r.ok && r.served.fallback).toBe('provider')
    expect(r.attempts.map((a) => `${a.provider}/${a.key}:${a.error?.reason ?? 'ok'}`)).toEqual(['alpha/a1:server_error', 'alpha/a2:server_error', 'beta/b1:ok'])
    expect(time.sleeps).toHaveLength(1) // only before a2, on the failing provider; beta went at once
  })

  it('honours a 5xx Retry-After before calling the provider again, up to retry_after_cap_ms', async () => {
    const time = await open({ retry: { max_attempts: 3, backoff_ms: { base: 100, max: 1000 }, retry_after_cap_ms: 1500 } })
    beta.fail({ status: 503, retryAfter: '1', times: 1 })
    beta.fail({ status: 503, retryAfter: '60', times: 1 })
    const r = await gw!.call('solo')
    expect(r.ok).toBe(true)
    expect(time.sleeps).toEqual([1000, 1500])
  })

  it('never retries a 400', async () => {
    const time = await open({ retry: { max_attempts: 5 } })
    alpha.fail({ status: 400 })
    const r = await gw!.call('m')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.error.status).toBe(400)
    expect(alpha.count() + beta.count()).toBe(1)
    expect(r.attempts[0]!.error!.reason).toBe('bad_request')
    expect(time.sleeps).toEqual([])
  })

  it('stops at max_attempts, counting fallbacks', async () => {
    await open({ retry: { max_attempts: 2, backoff_ms: { base: 1, max: 1 } } })
    alpha.fail({ status: 500 })
    beta.fail({ status: 500 })
    const r = await gw!.call('m')
    expect(r.ok).toBe(false)
    expect(r.attempts).toHaveLength(2)
    expect(alpha.count() + beta.count()).toBe(2)
  })

  it('stops when the next wait would pass the time budget, and answers with the last upstream error', async () => {
    const time = await open({ retry: { max_attempts: 10, backoff_ms: { base: 2000, max: 2000 } }, timeouts_ms: { budget: 2500 } }, () => 0.9)
    beta.fail({ status: 500 })
    const r = await gw!.call('solo')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.error.status).toBe(502)
    // first wait 0.9*2000 = 1800 fits in 2500; the second would end at 3600
    expect(time.sleeps).toEqual([1800])
    expect(beta.count()).toBe(2)
  })

  it('a 429 with Retry-After cools the key; with every key cooling it waits for the first, within the cap', async () => {
    const time = await open({ retry: { max_attempts: 3, retry_after_cap_ms: 5000 } })
    beta.fail({ status: 429, retryAfter: '2', times: 1 })
    const r = await gw!.call('solo')
    expect(r.ok).toBe(true)
    expect(r.attempts.map((a) => a.error?.reason ?? 'ok')).toEqual(['rate_limited', 'ok'])
    expect(time.sleeps).toEqual([2000])
    expect(gw!.events.keys.map((k) => `${k.key}:${k.from}>${k.to}`)).toEqual(['b1:ok>cooling', 'b1:cooling>ok'])
  })

  it('a 429 whose Retry-After is over the cap is passed on to the client instead of waited', async () => {
    const time = await open({ retry: { max_attempts: 3, retry_after_cap_ms: 5000 } })
    beta.fail({ status: 429, retryAfter: '60' })
    const r = await gw!.call('solo')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.error.status).toBe(429)
    expect(!r.ok && r.error.headers['retry-after']).toBe('60')
    expect(time.sleeps).toEqual([])
    // the key stays out for the whole minute
    const h = gw!.gateway.health().providers.find((p) => p.name === 'beta')!.keys[0]!
    expect(h).toMatchObject({ health: 'cooling', available: false })
    expect(h.cooldownUntil! - time.now()).toBe(60_000)
  })

  it('a 429 without Retry-After cools the key for keys.cooldown_ms and the next key serves', async () => {
    const time = await open({ keys: { strategy: 'priority', cooldown_ms: 7000 } })
    alpha.fail({ key: secret('alpha', 'a1'), status: 429, times: 1 })
    const first = await gw!.call('m')
    expect(first.ok && first.served.key).toBe('a2')
    const second = await gw!.call('m')
    expect(second.ok && second.served.key).toBe('a2') // a1 still cooling
    time.advance(7000)
    const third = await gw!.call('m')
    expect(third.ok && third.served.key).toBe('a1')
  })

  it('a 401 marks the key invalid (not retried, not the request\'s fault) and the next key serves', async () => {
    await open({ keys: { strategy: 'priority' } })
    alpha.fail({ key: secret('alpha', 'a1'), status: 401 })
    const r = await gw!.call('m')
    expect(r.ok && r.served.key).toBe('a2')
    expect(r.attempts[0]!.error).toMatchObject({ reason: 'key_rejected', code: 'upstream_auth_failed' })
    for (let i = 0; i < 3; i++) expect((await gw!.call('m')).ok).toBe(true)
    expect(alpha.count(secret('alpha', 'a1'))).toBe(1) // never tried again
    expect(gw!.events.keys).toEqual([expect.objectContaining({ provider: 'alpha', key: 'a1', from: 'ok', to: 'invalid' })])
    const key = gw!.gateway.health().providers.find((p) => p.name === 'alpha')!.keys.find((k) => k.label === 'a1')!
    expect(key).toMatchObject({ health: 'invalid', healthy: false, available: false })
    expect(JSON.stringify(gw!.gateway.health())).not.toContain('sk-')
  })
})

describe('circuit breakers in the gateway (injected clock)', () => {
  let data: ReturnType<typeof tempDataDir>
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let gw: Awaited<ReturnType<typeof directGateway>>
  let time: ReturnType<typeof manualClock>

  beforeEach(async () => {
    data = tempDataDir()
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, ['a1'])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await setPolicy(data.dir, 'global', {
      retry: { max_attempts: 2, backoff_ms: { base: 1, max: 1 } },
      circuit: { consecutive_failures: 3, open_s: 10, half_open_probes: 1, min_requests: 100 },
    })
    time = manualClock()
    gw = await directGateway(data.dir, { clock: time.clock, random: () => 0 })
  })
  afterEach(async () => {
    await gw.close()
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  const alphaState = () => gw.gateway.health().providers.find((p) => p.name === 'alpha')!.circuit.state

  it('opens after consecutive failures, skips the provider while open, half-opens, and closes on a probe success', async () => {
    alpha.fail({ status: 500 })
    for (let i = 0; i < 3; i++) expect((await gw.call('m')).ok).toBe(true) // beta serves each time
    expect(alphaState()).toBe('open')
    const before = alpha.count()
    const skipped = await gw.call('m')
    expect(skipped.ok && skipped.served.provider).toBe('beta')
    expect(skipped.attempts).toHaveLength(1) // alpha was not even tried
    expect(alpha.count()).toBe(before)

    alpha.heal()
    time.advance(10_000)
    expect(alphaState()).toBe('half_open')
    const probe = await gw.call('m')
    expect(probe.ok && probe.served.provider).toBe('alpha')
    expect(alphaState()).toBe('closed')
    const providerEvents = gw.events.circuits.filter((c) => c.scope === 'provider' && c.provider === 'alpha')
    expect(providerEvents.map((c) => `${c.from}>${c.to}`)).toEqual(['closed>open', 'open>half_open', 'half_open>closed'])
    expect(providerEvents[0]).toMatchObject({ reason: expect.stringContaining('3 consecutive failures'), openUntil: expect.any(Number) })
  })

  it('re-opens when the half-open probe fails', async () => {
    alpha.fail({ status: 503 })
    for (let i = 0; i < 3; i++) await gw.call('m')
    time.advance(10_000)
    const probe = await gw.call('m')
    expect(probe.attempts.map((a) => `${a.provider}:${a.error?.reason ?? 'ok'}`)).toEqual(['alpha:server_error', 'beta:ok'])
    expect(alphaState()).toBe('open')
    time.advance(9_999)
    expect(alphaState()).toBe('open')
    time.advance(1)
    expect(alphaState()).toBe('half_open')
  })

  it('answers 503 with Retry-After when every circuit is open', async () => {
    alpha.fail({ status: 500 })
    beta.fail({ status: 500 })
    for (let i = 0; i < 3; i++) await gw.call('m')
    const r = await gw.call('m')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.error).toMatchObject({ status: 503, code: 'upstream_unavailable' })
    expect(!r.ok && r.error.message).toContain("provider 'alpha': circuit open")
    expect(!r.ok && Number(r.error.headers['retry-after'])).toBeGreaterThan(0)
  })

  it('keeps a per-key circuit: one failing key opens its own circuit while the provider stays closed', async () => {
    await gw.close()
    await addProvider(data.dir, 'gamma', alpha, ['g1', 'g2'])
    await addRoute(data.dir, 'g', ['gamma/up'])
    await setPolicy(data.dir, 'global', { keys: { strategy: 'priority' }, retry: { max_attempts: 2, backoff_ms: { base: 1, max: 1 } }, circuit: { consecutive_failures: 3, open_s: 10, min_requests: 100 } })
    gw = await directGateway(data.dir, { clock: time.clock, random: () => 0 })
    alpha.fail({ key: secret('gamma', 'g1'), status: 500 })
    // provider-level: failures and successes alternate (g1 fails, g2 serves), so the provider circuit stays closed
    for (let i = 0; i < 3; i++) expect((await gw.call('g')).ok).toBe(true)
    const gamma = gw.gateway.health().providers.find((p) => p.name === 'gamma')!
    expect(gamma.circuit.state).toBe('closed')
    expect(gamma.keys.map((k) => `${k.label}:${k.circuit.state}`)).toEqual(['g1:open', 'g2:closed'])
    const r = await gw.call('g')
    expect(r.ok && r.attempts.map((a) => a.key)).toEqual(['g2'])
  })
})
