/**
 * Upstream health shared between instances through the limits backend's shared state, with the memory
 * backend standing in for Redis: two registries (two "instances") share one state object; what one
 * publishes (open circuits, cooldowns, invalid keys) the other honours after one poll, and nothing is
 * read or written per request.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { POLICY_DEFAULTS } from '../../src/core/policy-schema.js'
import type { SharedState } from '../../src/core/shared-state.js'
import type { CircuitChange, KeyHealthChange } from '../../src/gateway/events.js'
import { HealthRegistry } from '../../src/gateway/health-registry.js'
import type { FailureOutcome } from '../../src/gateway/outcome.js'
import { SharedHealth } from '../../src/gateway/shared-health.js'
import { MemoryBackend } from '../../src/limits/memory.js'
import type { KeyHealthWrite } from '../../src/store/repos/key-health.js'
import type { ConfigSnapshot, KeyConfig, ProviderConfig } from '../../src/store/snapshot.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { tempDataDir } from '../helpers/proxy.js'
import { addProvider, addRoute, directGateway, manualClock, secret, setPolicy } from './harness.js'

const cfg = { ...POLICY_DEFAULTS.circuit, consecutive_failures: 2, open_s: 10, half_open_probes: 1 }
const policy = { ...POLICY_DEFAULTS, circuit: cfg }
const serverError: FailureOutcome = { reason: 'server_error', availability: true, fallback: true, retryAfterMs: null }
const rejected: FailureOutcome = { reason: 'key_rejected', availability: false, fallback: true, retryAfterMs: null }
const limited = (retryAfterMs: number | null): FailureOutcome => ({ reason: 'rate_limited', availability: false, fallback: true, retryAfterMs })

type Circuits = NonNullable<ConfigSnapshot['circuits']>

function snapshot(keys: Array<Partial<KeyConfig>>, circuits: Circuits = { overrides: new Map(), states: new Map() }) {
  const provider: ProviderConfig = {
    id: 7,
    name: 'alpha',
    type: 'openai',
    baseUrl: null,
    settings: {},
    enabled: true,
    keys: keys.map((k, i) => ({ id: i + 1, label: `k${i + 1}`, secret: `sk-${i + 1}`, priority: 0, weight: 1, state: 'active', ...k })),
  } as ProviderConfig
  return { snap: { providers: new Map([['alpha', provider]]), routes: new Map(), policies: new Map(), circuits } as unknown as ConfigSnapshot, provider }
}

/** Counts what goes to the shared state. */
function counted(inner: SharedState) {
  const calls = { get: 0, getMany: 0, set: 0, del: 0, incr: 0 }
  const state: SharedState = {
    get: (k) => (calls.get++, inner.get(k)),
    getMany: (k) => (calls.getMany++, inner.getMany(k)),
    set: (k, v, t) => (calls.set++, inner.set(k, v, t)),
    del: (k) => (calls.del++, inner.del(k)),
    incr: (k, t, b) => (calls.incr++, inner.incr(k, t, b)),
  }
  return { state, calls }
}

/** Two instances with their own registries over one shared state and one (manual) clock. */
function cluster() {
  const time = manualClock(1_000_000)
  const memory = new MemoryBackend({ clock: time.now, sweepMs: 0 })
  const { state, calls } = counted(memory)
  const instance = () => {
    const circuits: CircuitChange[] = []
    const keys: KeyHealthChange[] = []
    const writes: KeyHealthWrite[] = []
    const shared = new SharedHealth({ state, pollMs: 0 })
    const r = new HealthRegistry({ clock: time.clock, events: { circuit: (c) => circuits.push(c), keyHealth: (k) => keys.push(k) }, sink: { keyHealth: (w) => writes.push(w), circuit: () => {} }, shared })
    shared.start({ watched: () => r.sharedKeys(), observe: (k, v) => r.observe(k, v) })
    return { r, shared, circuits, keys, writes, poll: () => shared.poll() }
  }
  return { time, memory, calls, a: instance(), b: instance() }
}

/** One call through the registry that fails with `outcome`. */
function fail(r: HealthRegistry, provider: ProviderConfig, key: KeyConfig | null, outcome: FailureOutcome, now: number, message = 'upstream said no') {
  const lease = r.acquire(provider, key, cfg, now)
  if (!lease) throw new Error('no lease')
  r.failed(lease, outcome, message, policy)
  r.end(lease)
}

const flush = () => new Promise((r) => setImmediate(r))

describe('shared health between instances (memory shared state)', () => {
  it('a provider circuit opened by A is open on B after one poll, until the same time; B then probes on its own', async () => {
    const { a, b, time, memory, calls } = cluster()
    const { snap, provider } = snapshot([])
    a.r.sync(snap)
    b.r.sync(snap)
    fail(a.r, provider, null, serverError, time.now())
    fail(a.r, provider, null, serverError, time.now())
    const openUntil = time.now() + 10_000
    expect(a.r.providerAvailable(provider, cfg, time.now())).toBe(false)
    expect(memory.getSync('circuit:p:7')).toBe(String(openUntil))
    expect(b.r.providerAvailable(provider, cfg, time.now())).toBe(true)

    await b.poll()
    expect(b.r.providerAvailable(provider, cfg, time.now())).toBe(false)
    expect(b.r.reopensAt(provider, null, time.now())).toBe(openUntil)
    expect(b.circuits.map((c) => `${c.from}>${c.to}:${c.reason}`)).toEqual(['closed>open:opened by another instance'])
    expect(b.circuits[0]!.openUntil).toBe(openUntil)
    // neither B's adoption nor A reading its own value back publishes anything again
    await a.poll()
    expect(a.circuits.map((c) => c.to)).toEqual(['open'])
    expect(calls.set).toBe(1)

    // the shared period ends everywhere at once (TTL = open_s); each instance half-opens and probes by itself
    time.advance(10_000)
    expect(memory.getSync('circuit:p:7')).toBeNull()
    const probe = b.r.acquire(provider, null, cfg, time.now())
    expect(probe?.permits.provider.probe).toBe(true)
    expect(b.r.acquire(provider, null, cfg, time.now())).toBeNull() // one probe per instance
    expect(a.r.acquire(provider, null, cfg, time.now())?.permits.provider.probe).toBe(true)
  })

  it("a failed probe elsewhere re-opens the circuit here too, and this instance's late probe result is ignored", async () => {
    const { a, b, time } = cluster()
    const { snap, provider } = snapshot([])
    a.r.sync(snap)
    b.r.sync(snap)
    fail(a.r, provider, null, serverError, time.now())
    fail(a.r, provider, null, serverError, time.now())
    await b.poll()
    time.advance(10_000)
    const bProbe = b.r.acquire(provider, null, cfg, time.now())!
    fail(a.r, provider, null, serverError, time.now()) // A's probe fails: open again, published
    await b.poll()
    expect(b.r.providerAvailable(provider, cfg, time.now())).toBe(false)
    b.r.succeeded(bProbe) // from the earlier half-open state: does not close it
    b.r.end(bProbe)
    expect(b.r.providerAvailable(provider, cfg, time.now())).toBe(false)
    expect(b.circuits.map((c) => `${c.from}>${c.to}`)).toEqual(['closed>open', 'open>half_open', 'half_open>open'])
  })

  it('a key circuit opened by A is honoured by B', async () => {
    const { a, b, time } = cluster()
    const { snap, provider } = snapshot([{}, {}])
    a.r.sync(snap)
    b.r.sync(snap)
    // both failures on key 1 with a provider that stays closed (the second key keeps it up)
    fail(a.r, provider, provider.keys[0]!, serverError, time.now())
    const ok = a.r.acquire(provider, provider.keys[1]!, cfg, time.now())!
    a.r.succeeded(ok)
    a.r.end(ok)
    fail(a.r, provider, provider.keys[0]!, serverError, time.now())
    await b.poll()
    expect(b.r.providerAvailable(provider, cfg, time.now())).toBe(true)
    expect(b.r.keyAvailable(provider.keys[0]!, cfg, time.now())).toBe(false)
    expect(b.r.keyAvailable(provider.keys[1]!, cfg, time.now())).toBe(true)
    expect(b.circuits.map((c) => `${c.scope}:${c.key}:${c.to}`)).toEqual(['key:k1:open'])
  })

  it("a 429 cools the key down on every instance for the upstream's Retry-After", async () => {
    const { a, b, time, memory } = cluster()
    const { snap, provider } = snapshot([{}, {}])
    a.r.sync(snap)
    b.r.sync(snap)
    fail(a.r, provider, provider.keys[0]!, limited(5000), time.now(), 'injected 429')
    const until = time.now() + 5000
    expect(JSON.parse(memory.getSync('cooldown:k:1')!)).toEqual({ epoch: 0, reason: 'upstream 429, Retry-After 5 s', until })
    await b.poll()
    const k1 = provider.keys[0]!
    expect(b.r.keyAvailable(k1, cfg, time.now())).toBe(false)
    expect(b.r.cooldownEnds(k1, cfg, time.now())).toBe(until)
    expect(b.keys.map((k) => `${k.key}:${k.from}>${k.to}:${k.reason}`)).toEqual(['k1:ok>cooling:upstream 429, Retry-After 5 s (seen by another instance)'])
    expect(b.writes.at(-1)).toMatchObject({ keyId: 1, cooldownUntil: until })
    // a second poll changes nothing
    await b.poll()
    expect(b.keys).toHaveLength(1)
    time.advance(5000)
    expect(b.r.keyAvailable(k1, cfg, time.now())).toBe(true)
  })

  it('an invalid key stays invalid on every instance until re-enabled; a re-enable clears the mark and old marks are ignored', async () => {
    const { a, b, time, memory } = cluster()
    const first = snapshot([{}])
    a.r.sync(first.snap)
    b.r.sync(first.snap)
    fail(a.r, first.provider, first.provider.keys[0]!, rejected, time.now(), 'Incorrect API key provided (401)')
    expect(JSON.parse(memory.getSync('invalid:k:1')!)).toEqual({ epoch: 0, reason: 'Incorrect API key provided (401)' })
    await b.poll()
    expect(b.r.keyView(first.provider.keys[0]!, cfg, time.now())).toMatchObject({ health: 'invalid', available: false })
    time.advance(3_600_000)
    expect(b.r.keyAvailable(first.provider.keys[0]!, cfg, time.now())).toBe(false)

    // `proxy keys enable`: the key's health epoch moves in the store, so in every snapshot
    const again = snapshot([{ health: { health: 'ok', reason: null, changedAt: null, cooldownUntil: null, epoch: 1 } }])
    a.r.sync(again.snap)
    await flush()
    expect(memory.getSync('invalid:k:1')).toBeNull()
    b.r.sync(again.snap)
    expect(b.r.keyAvailable(again.provider.keys[0]!, cfg, time.now())).toBe(true)
    // a mark from before the re-enable (say the delete was lost) is ignored
    await memory.set('invalid:k:1', JSON.stringify({ epoch: 0, reason: 'old' }), 60_000)
    await b.poll()
    expect(b.r.keyAvailable(again.provider.keys[0]!, cfg, time.now())).toBe(true)
    // a new rejection after the re-enable is shared again
    fail(a.r, again.provider, again.provider.keys[0]!, rejected, time.now(), 'rejected again (403)')
    await b.poll()
    expect(b.r.keyAvailable(again.provider.keys[0]!, cfg, time.now())).toBe(false)
  })

  it('a mark of a newer epoch waits until this instance has seen the re-enable', async () => {
    const { a, b, time } = cluster()
    const old = snapshot([{}])
    const now = snapshot([{ health: { health: 'ok', reason: null, changedAt: null, cooldownUntil: null, epoch: 1 } }])
    a.r.sync(old.snap)
    a.r.sync(now.snap)
    b.r.sync(old.snap) // B has not reloaded yet
    fail(a.r, now.provider, now.provider.keys[0]!, rejected, time.now(), '401')
    await b.poll()
    expect(b.r.keyAvailable(old.provider.keys[0]!, cfg, time.now())).toBe(true)
    b.r.sync(now.snap)
    await b.poll()
    expect(b.r.keyAvailable(now.provider.keys[0]!, cfg, time.now())).toBe(false)
  })

  it('an operator reset clears the shared circuit; an operator override wins over a shared opening', async () => {
    const { a, b, time, memory } = cluster()
    const base = snapshot([])
    a.r.sync(base.snap)
    b.r.sync(base.snap)
    fail(a.r, base.provider, null, serverError, time.now())
    fail(a.r, base.provider, null, serverError, time.now())
    await b.poll()
    expect(b.r.providerAvailable(base.provider, cfg, time.now())).toBe(false)

    const reset = snapshot([], { overrides: new Map([['p:7', { mode: null, epoch: 1 }]]), states: new Map() })
    a.r.sync(reset.snap)
    expect(memory.getSync('circuit:p:7')).toBeNull()
    b.r.sync(reset.snap)
    await b.poll()
    expect(b.r.providerAvailable(reset.provider, cfg, time.now())).toBe(true)

    // forced closed everywhere: a shared opening (from an instance that had not reloaded yet) does not take it out
    const closed = snapshot([], { overrides: new Map([['p:7', { mode: 'closed', epoch: 2 }]]), states: new Map() })
    b.r.sync(closed.snap)
    await memory.set('circuit:p:7', String(time.now() + 10_000), 10_000)
    await b.poll()
    expect(b.r.providerAvailable(closed.provider, cfg, time.now())).toBe(true)
  })

  it('drops the marks of a key that left the snapshot (rotated or deleted)', async () => {
    const { a, time, memory } = cluster()
    const two = snapshot([{}, {}])
    a.r.sync(two.snap)
    fail(a.r, two.provider, two.provider.keys[1]!, rejected, time.now(), '401')
    expect(memory.getSync('invalid:k:2')).not.toBeNull()
    a.r.sync(snapshot([{}]).snap)
    expect(memory.getSync('invalid:k:2')).toBeNull()
    expect(a.r.sharedKeys()).toEqual(['circuit:p:7', 'circuit:k:1', 'cooldown:k:1', 'invalid:k:1'])
  })

  it('polls in the background, one read at a time, and survives a failing shared state', async () => {
    let reads = 0
    let release: () => void = () => {}
    const state: SharedState = {
      get: async () => null,
      getMany: (keys) => {
        reads++
        if (reads === 1) return new Promise((resolve) => (release = () => resolve(keys.map(() => null))))
        return Promise.reject(new Error('Redis did not answer'))
      },
      set: () => Promise.reject(new Error('down')),
      del: () => Promise.reject(new Error('down')),
      incr: async () => 0,
    }
    const errors: unknown[] = []
    const shared = new SharedHealth({ state, pollMs: 10, onError: (e) => errors.push(e) })
    const seen: number[] = []
    shared.start({ watched: () => ['circuit:p:1'], observe: (_k, v) => seen.push(v.length) })
    await new Promise((r) => setTimeout(r, 60))
    expect(reads).toBe(1) // the first read hangs: no second one piles up
    release()
    await new Promise((r) => setTimeout(r, 60))
    shared.publish('circuit:p:1', '1', 1000)
    await flush()
    shared.stop()
    const after = reads
    await new Promise((r) => setTimeout(r, 40))
    expect(reads).toBe(after)
    expect(seen).toEqual([1])
    expect(reads).toBeGreaterThan(2)
    expect(errors.length).toBeGreaterThan(1)
  })
})

describe('two gateways sharing one state object', () => {
  let data: ReturnType<typeof tempDataDir>
  let alpha: FaultUpstream
  let beta: FaultUpstream
  const open: Array<Awaited<ReturnType<typeof directGateway>>> = []

  beforeEach(async () => {
    data = tempDataDir()
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, [{ label: 'a1', priority: 0 }, { label: 'a2', priority: 1 }])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await setPolicy(data.dir, 'global', {
      keys: { strategy: 'priority' },
      fallback: { other_keys: false },
      retry: { max_attempts: 2, backoff_ms: { base: 5, max: 5 } },
      circuit: { consecutive_failures: 2, open_s: 30, min_requests: 1000 },
    })
  })
  afterEach(async () => {
    for (const g of open.splice(0)) await g.close()
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  it('instance A opens a circuit; instance B skips that provider within the poll interval', async () => {
    const state = new MemoryBackend({ sweepMs: 0 })
    const pollMs = 50
    const a = await directGateway(data.dir, { shared: state, sharedPollMs: pollMs })
    const b = await directGateway(data.dir, { shared: state, sharedPollMs: pollMs })
    open.push(a, b)
    alpha.fail({ status: 500 })
    for (let i = 0; i < 2; i++) expect((await a.call('m')).served?.provider).toBe('beta')
    const opened = a.events.circuits.find((c) => c.scope === 'provider' && c.to === 'open')!
    expect(opened).toBeDefined()
    const tried = alpha.count()
    const started = performance.now()
    while (!b.events.circuits.some((c) => c.scope === 'provider' && c.to === 'open') && performance.now() - started < 1000) await new Promise((r) => setTimeout(r, 5))
    const honouredMs = Date.now() - opened.at
    console.log(`gateway-level: B honoured A's open circuit ${honouredMs} ms after A opened it (poll every ${pollMs} ms)`)
    expect(honouredMs).toBeLessThanOrEqual(pollMs * 2 + 50)
    for (let i = 0; i < 3; i++) {
      const r = await b.call('m')
      expect(r.served).toMatchObject({ provider: 'beta', fallback: 'provider' })
      expect(r.attempts).toHaveLength(1)
    }
    expect(alpha.count()).toBe(tried)
    expect(b.events.circuits.find((c) => c.scope === 'provider')).toMatchObject({ provider: 'alpha', to: 'open', reason: 'opened by another instance', openUntil: opened.openUntil })
  })

  it('adds nothing to the request path: no shared-state call per request, one write per opening', async () => {
    const { state, calls } = counted(new MemoryBackend({ sweepMs: 0 }))
    const gw = await directGateway(data.dir, { shared: state, sharedPollMs: 0 })
    open.push(gw)
    for (let i = 0; i < 20; i++) expect((await gw.call('m')).content).toBe(`served by alpha with ${secret('alpha', 'a1')}`)
    expect(calls).toEqual({ get: 0, getMany: 0, set: 0, del: 0, incr: 0 })
    alpha.fail({ status: 500 })
    for (let i = 0; i < 4; i++) await gw.call('m')
    // the provider's circuit and key a1's circuit opened: one write each
    expect(calls).toEqual({ get: 0, getMany: 0, set: 2, del: 0, incr: 0 })
  })
})
