import { describe, expect, it } from 'vitest'
import { POLICY_DEFAULTS } from '../../src/core/policy-schema.js'
import type { CircuitChange, KeyHealthChange } from '../../src/gateway/events.js'
import { HealthRegistry } from '../../src/gateway/health-registry.js'
import type { CircuitStateWrite } from '../../src/store/repos/circuits.js'
import type { KeyHealthWrite } from '../../src/store/repos/key-health.js'
import type { ConfigSnapshot, KeyConfig, ProviderConfig } from '../../src/store/snapshot.js'
import { manualClock } from './harness.js'

const cfg = { ...POLICY_DEFAULTS.circuit, consecutive_failures: 2, open_s: 10 }
const policy = { ...POLICY_DEFAULTS, circuit: cfg }

function snapshot(keys: Array<Partial<KeyConfig>>, circuits: ConfigSnapshot['circuits'] = { overrides: new Map(), states: new Map() }) {
  const provider: ProviderConfig = {
    id: 7,
    name: 'alpha',
    type: 'openai',
    baseUrl: null,
    settings: {},
    enabled: true,
    keys: keys.map((k, i) => ({ id: i + 1, label: `k${i + 1}`, secret: `sk-${i + 1}`, priority: 0, weight: 1, state: 'active', ...k })),
  }
  return { snap: { providers: new Map([['alpha', provider]]), routes: new Map(), policies: new Map(), circuits } as unknown as ConfigSnapshot, provider }
}

function registry() {
  const time = manualClock(1_000_000)
  const circuits: CircuitChange[] = []
  const keys: KeyHealthChange[] = []
  const writes: { keys: KeyHealthWrite[]; circuits: CircuitStateWrite[] } = { keys: [], circuits: [] }
  const r = new HealthRegistry({
    clock: time.clock,
    events: { circuit: (c) => circuits.push(c), keyHealth: (k) => keys.push(k) },
    sink: { keyHealth: (w) => writes.keys.push(w), circuit: (w) => writes.circuits.push(w) },
  })
  return { r, time, circuits, keys, writes }
}

describe('health registry', () => {
  it('restores persisted key health and circuit states, and announces the restored problems', () => {
    const { r, time, keys } = registry()
    const { snap, provider } = snapshot(
      [{ health: { health: 'invalid', reason: '401', changedAt: 1, cooldownUntil: null, epoch: 0 } }, { health: { health: 'ok', reason: '429', changedAt: 1, cooldownUntil: time.now() + 5000, epoch: 0 } }, {}],
      { overrides: new Map(), states: new Map([['p:7', { state: 'open', openUntil: time.now() + 3000 }], ['k:3', { state: 'open', openUntil: time.now() + 3000 }]]) },
    )
    r.sync(snap)
    const view = r.health(snap, cfg).providers[0]!
    expect(view.circuit.state).toBe('open')
    expect(view.keys.map((k) => `${k.label}:${k.health}:${k.circuit.state}`)).toEqual(['k1:invalid:closed', 'k2:cooling:closed', 'k3:ok:open'])
    expect(keys.map((k) => `${k.key}:${k.to}`)).toEqual(['k1:invalid', 'k2:cooling'])
    expect(r.providerAvailable(provider, cfg, time.now())).toBe(false)
    time.advance(5000)
    expect(r.keyAvailable(provider.keys[1]!, cfg, time.now())).toBe(true)
  })

  it('forgets a key\'s recorded health when the operator re-enables it (epoch bump)', () => {
    const { r, time, keys, writes } = registry()
    const first = snapshot([{}])
    r.sync(first.snap)
    const lease = r.acquire(first.provider, first.provider.keys[0]!, cfg, time.now())!
    r.failed(lease, { reason: 'key_rejected', availability: false, fallback: true, retryAfterMs: null }, 'rejected (401)', policy)
    r.end(lease)
    expect(r.keyAvailable(first.provider.keys[0]!, cfg, time.now())).toBe(false)
    expect(writes.keys.at(-1)).toMatchObject({ keyId: 1, health: 'invalid', epoch: 0 })

    const again = snapshot([{ health: { health: 'ok', reason: null, changedAt: null, cooldownUntil: null, epoch: 1 } }])
    r.sync(again.snap)
    expect(r.keyAvailable(again.provider.keys[0]!, cfg, time.now())).toBe(true)
    expect(keys.map((k) => `${k.from}>${k.to}`)).toEqual(['ok>invalid', 'invalid>ok'])
    expect(writes.keys.at(-1)).toMatchObject({ keyId: 1, health: 'ok', epoch: 1 })
  })

  it('applies operator overrides from the snapshot and resets a breaker when the override epoch moves', () => {
    const { r, time, circuits } = registry()
    const a = snapshot([{}])
    r.sync(a.snap)
    for (let i = 0; i < 2; i++) {
      const lease = r.acquire(a.provider, null, cfg, time.now())!
      r.failed(lease, { reason: 'server_error', availability: true, fallback: true, retryAfterMs: null }, '500', policy)
      r.end(lease)
    }
    expect(r.providerAvailable(a.provider, cfg, time.now())).toBe(false)

    const reset = snapshot([{}], { overrides: new Map([['p:7', { mode: null, epoch: 1 }]]), states: new Map() })
    r.sync(reset.snap)
    expect(r.providerAvailable(reset.provider, cfg, time.now())).toBe(true)

    const forced = snapshot([{}], { overrides: new Map([['p:7', { mode: 'open', epoch: 2 }]]), states: new Map() })
    r.sync(forced.snap)
    expect(r.providerAvailable(forced.provider, cfg, time.now())).toBe(false)
    expect(r.health(forced.snap, cfg).providers[0]!.circuit).toMatchObject({ state: 'open', override: 'open', openUntil: null })
    expect(circuits.map((c) => `${c.from}>${c.to}:${c.reason}`)).toEqual(['closed>open:2 consecutive failures (last: server_error)', 'open>closed:operator reset', 'closed>open:operator: open'])
  })

  it('counts in-flight calls per key and frees them once', () => {
    const { r, time } = registry()
    const { snap, provider } = snapshot([{}, {}])
    r.sync(snap)
    const l1 = r.acquire(provider, provider.keys[0]!, cfg, time.now())!
    r.acquire(provider, provider.keys[0]!, cfg, time.now())
    expect(r.load(provider.keys[0]!)).toEqual({ inFlight: 2, recent: 0 })
    r.succeeded(l1)
    r.end(l1)
    r.end(l1)
    expect(r.load(provider.keys[0]!)).toEqual({ inFlight: 1, recent: 1 })
    expect(r.health(snap, cfg).providers[0]!.inFlight).toBe(1)
  })
})
