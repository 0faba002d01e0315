import { describe, expect, it } from 'vitest'
import { POLICY_DEFAULTS } from '../../src/core/policy-schema.js'
import { CircuitBreaker, type CircuitTransition } from '../../src/gateway/circuit-breaker.js'

const cfg = { ...POLICY_DEFAULTS.circuit, consecutive_failures: 3, failure_rate: 0.5, min_requests: 6, window_s: 10, open_s: 5, half_open_probes: 1 }

function breaker() {
  const transitions: CircuitTransition[] = []
  return { b: new CircuitBreaker((t) => transitions.push(t)), transitions }
}

describe('circuit breaker state machine', () => {
  it('opens after N consecutive failures, and a success in between resets the count', () => {
    const { b, transitions } = breaker()
    const t = 1_000_000
    b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    b.onSuccess(t, b.tryAcquire(t, cfg))
    b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    expect(b.state(t)).toBe('closed')
    b.onFailure(t, cfg, b.tryAcquire(t, cfg), 'server_error')
    expect(b.state(t)).toBe('open')
    expect(transitions).toEqual([expect.objectContaining({ from: 'closed', to: 'open', openUntil: t + 5000, reason: expect.stringContaining('3 consecutive failures') })])
    expect(b.tryAcquire(t + 4999, cfg)).toBeNull()
  })

  it('opens when the failure rate over the window passes the threshold, once min_requests calls were seen', () => {
    const { b } = breaker()
    const t = 2_000_000
    // alternate success/failure: never 3 in a row, but 50% failures
    for (let i = 0; i < 5; i++) {
      const ok = i % 2 === 0
      const p = b.tryAcquire(t + i, cfg)
      if (ok) b.onSuccess(t + i, p)
      else b.onFailure(t + i, cfg, p)
    }
    expect(b.state(t + 5)).toBe('closed') // 2/5 failures, below min_requests anyway
    b.onFailure(t + 6, cfg, b.tryAcquire(t + 6, cfg)) // 3/6 = 50%
    expect(b.state(t + 6)).toBe('open')
  })

  it('forgets failures that left the window', () => {
    const { b } = breaker()
    const t = 3_000_000
    for (let i = 0; i < 5; i++) {
      b.onSuccess(t, b.tryAcquire(t, cfg))
      b.onFailure(t, cfg, b.tryAcquire(t, cfg))
      b.onSuccess(t, b.tryAcquire(t, cfg))
    }
    const later = t + 11_000
    b.onFailure(later, cfg, b.tryAcquire(later, cfg))
    b.onSuccess(later, b.tryAcquire(later, cfg))
    expect(b.view(later, cfg).window).toEqual({ success: 1, failure: 1 })
    expect(b.state(later)).toBe('closed')
  })

  it('goes half-open after open_s, lets half_open_probes through, and closes on a probe success', () => {
    const { b, transitions } = breaker()
    const t = 4_000_000
    for (let i = 0; i < 3; i++) b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    expect(b.state(t + 5000)).toBe('half_open')
    const probe = b.tryAcquire(t + 5000, cfg)
    expect(probe).toMatchObject({ probe: true })
    expect(b.tryAcquire(t + 5001, cfg)).toBeNull() // only one probe at a time
    b.onSuccess(t + 5100, probe)
    expect(b.state(t + 5100)).toBe('closed')
    expect(transitions.map((x) => `${x.from}>${x.to}`)).toEqual(['closed>open', 'open>half_open', 'half_open>closed'])
    expect(b.view(t + 5100, cfg)).toMatchObject({ consecutiveFailures: 0, window: { success: 0, failure: 0 } })
  })

  it('re-opens when the probe fails, for another open_s', () => {
    const { b } = breaker()
    const t = 5_000_000
    for (let i = 0; i < 3; i++) b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    const probe = b.tryAcquire(t + 5000, cfg)
    b.onFailure(t + 5200, cfg, probe, 'timeout')
    expect(b.state(t + 5200)).toBe('open')
    expect(b.view(t + 5200, cfg).openUntil).toBe(t + 10_200)
    expect(b.tryAcquire(t + 10_199, cfg)).toBeNull()
    expect(b.tryAcquire(t + 10_200, cfg)).toMatchObject({ probe: true })
  })

  it('lets several probes through when half_open_probes allows, and frees a probe slot on a neutral outcome', () => {
    const { b } = breaker()
    const c = { ...cfg, half_open_probes: 2 }
    const t = 6_000_000
    for (let i = 0; i < 3; i++) b.onFailure(t, c, b.tryAcquire(t, c))
    const p1 = b.tryAcquire(t + 5000, c)
    const p2 = b.tryAcquire(t + 5000, c)
    expect(p1 && p2).toBeTruthy()
    expect(b.tryAcquire(t + 5000, c)).toBeNull()
    b.release(p1)
    expect(b.allows(t + 5000, c)).toBe(true)
    b.onSuccess(t + 5001, p2)
    expect(b.state(t + 5001)).toBe('closed')
  })

  it('ignores outcomes of calls that started before the circuit opened', () => {
    const { b } = breaker()
    const t = 7_000_000
    const early = b.tryAcquire(t, cfg)
    for (let i = 0; i < 3; i++) b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    b.onSuccess(t + 10, early) // a slow call from before: must not close the circuit
    expect(b.state(t + 10)).toBe('open')
  })

  it('obeys operator overrides: forced open refuses calls, forced closed never opens, reset clears', () => {
    const { b, transitions } = breaker()
    const t = 8_000_000
    b.setOverride('open', t)
    expect(b.state(t)).toBe('open')
    expect(b.tryAcquire(t + 60_000, cfg)).toBeNull()
    b.setOverride('closed', t)
    for (let i = 0; i < 10; i++) b.onFailure(t, cfg, b.tryAcquire(t, cfg))
    expect(b.state(t)).toBe('closed')
    b.setOverride(null, t)
    b.reset(t)
    expect(b.view(t, cfg)).toMatchObject({ state: 'closed', override: null, consecutiveFailures: 0 })
    expect(transitions.filter((x) => x.operator).map((x) => `${x.from}>${x.to}`)).toEqual(['closed>open', 'open>closed'])
  })

  it('restores a persisted open state without announcing it', () => {
    const { b, transitions } = breaker()
    const t = 9_000_000
    b.restore('open', t + 3000, t)
    expect(b.state(t)).toBe('open')
    expect(transitions).toEqual([])
    expect(b.state(t + 3000)).toBe('half_open')
  })
})
