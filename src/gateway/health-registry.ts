/**
 * Upstream health in memory: one circuit breaker per provider, one KeyHealth (with its own breaker)
 * per key. It follows the config snapshot (new keys, deleted keys, operator overrides and
 * re-enables), restores what an earlier run persisted, announces every change through the events
 * sink, and hands changes to the write-behind sink. Nothing here touches the store directly.
 *
 * With a shared publisher (shared-health.ts), circuits that open, keys that start cooling and keys
 * the upstream rejects are also published for other instances, and `observe` folds in what they
 * published. Every check on the request path stays a local read.
 */
import type { EffectivePolicy } from '../core/policy-schema.js'
import { keyScope, providerScope, type CircuitSnapshot, type OverrideConfig } from '../store/repos/circuits.js'
import type { HealthSink } from '../store/repos/key-health.js'
import type { ConfigSnapshot, KeyConfig, ProviderConfig } from '../core/config.js'
import { CircuitBreaker, type CircuitSettings, type CircuitTransition, type CircuitView, type Permit } from './circuit-breaker.js'
import type { Clock } from './clock.js'
import type { GatewayEvents, KeyCondition } from './events.js'
import { KeyHealth, RECENT_WINDOW_S, type ConditionChange } from './key-health.js'
import type { KeyLoad } from './key-selector.js'
import type { FailureOutcome } from './outcome.js'
import { RollingWindow, type Counts } from './rolling-window.js'
import { INVALID_TTL_MS, parseKeyMark, sharedKeys, type KeyMark, type SharedHealthPublisher } from './shared-health.js'

interface ProviderEntry {
  id: number
  name: string
  breaker: CircuitBreaker
  inFlight: number
  recent: RollingWindow
}

interface KeyEntry {
  id: number
  providerId: number
  provider: string
  label: string
  health: KeyHealth
}

/** One call in progress: what it holds, so its outcome can be booked and its slots freed exactly once. */
export interface Lease {
  readonly provider: ProviderEntry
  readonly key: KeyEntry | null
  readonly permits: { provider: Permit; key: Permit | null }
  ended: boolean
}

export interface HealthRegistryDeps {
  clock: Clock
  events?: GatewayEvents
  sink?: HealthSink
  /** publishes circuit openings, cooldowns and invalid keys for other instances */
  shared?: SharedHealthPublisher
}

export type CircuitHealth = CircuitView

export interface KeyHealthView {
  id: number
  label: string
  /** the operator's switch */
  state: 'active' | 'disabled'
  health: KeyCondition
  /** health is 'ok' (not invalid, not cooling down) */
  healthy: boolean
  reason: string | null
  cooldownUntil: number | null
  /** the gateway would pick it now */
  available: boolean
  circuit: CircuitHealth
  inFlight: number
  consecutiveFailures: number
  lastError: string | null
  lastUsedAt: number | null
  /** outcomes over the last minute */
  recent: Counts
}

export interface ProviderHealthView {
  name: string
  type: string
  enabled: boolean
  circuit: CircuitHealth
  inFlight: number
  recent: Counts
  keys: KeyHealthView[]
}

export interface GatewayHealth {
  at: number
  providers: ProviderHealthView[]
}

export class HealthRegistry {
  readonly #deps: HealthRegistryDeps
  readonly #providers = new Map<number, ProviderEntry>()
  readonly #keys = new Map<number, KeyEntry>()
  /** override epochs already applied, per scope */
  readonly #epochs = new Map<string, number>()
  #synced: ConfigSnapshot | null = null
  /** the shared keys to poll; rebuilt after a snapshot change */
  #watched: string[] | null = null

  constructor(deps: HealthRegistryDeps) {
    this.#deps = deps
  }

  /** Follows a new config snapshot; cheap when it is the one already seen. */
  sync(snapshot: ConfigSnapshot): void {
    if (snapshot === this.#synced) return
    this.#synced = snapshot
    const now = this.#deps.clock.now()
    const circuits: CircuitSnapshot = snapshot.circuits ?? { overrides: new Map(), states: new Map() }
    const providers = new Set<number>()
    const keys = new Set<number>()
    for (const p of snapshot.providers.values()) {
      providers.add(p.id)
      const scope = providerScope(p.id)
      let entry = this.#providers.get(p.id)
      if (!entry) {
        const created: ProviderEntry = { id: p.id, name: p.name, inFlight: 0, recent: new RollingWindow(RECENT_WINDOW_S), breaker: new CircuitBreaker((t) => this.#circuitMoved(t, created, null)) }
        const persisted = circuits.states.get(scope)
        if (persisted) created.breaker.restore(persisted.state, persisted.openUntil, now)
        this.#providers.set(p.id, created)
        entry = created
      }
      entry.name = p.name
      this.#applyOverride(scope, entry.breaker, circuits.overrides.get(scope), now)
      for (const k of p.keys) {
        keys.add(k.id)
        this.#syncKey(p, k, circuits, now)
      }
    }
    for (const id of this.#providers.keys()) if (!providers.has(id)) this.#providers.delete(id)
    for (const id of this.#keys.keys()) {
      if (keys.has(id)) continue
      this.#keys.delete(id)
      // retired (rotated) or deleted: nobody needs its marks any more
      this.#deps.shared?.clear(sharedKeys.invalid(id))
      this.#deps.shared?.clear(sharedKeys.cooldown(id))
    }
    this.#watched = null
  }

  /** The shared keys that describe what this registry knows: each provider's circuit, each key's circuit and marks. */
  sharedKeys(): readonly string[] {
    if (this.#watched) return this.#watched
    const keys: string[] = []
    for (const id of this.#providers.keys()) keys.push(sharedKeys.circuit(providerScope(id)))
    for (const id of this.#keys.keys()) keys.push(sharedKeys.circuit(keyScope(id)), sharedKeys.cooldown(id), sharedKeys.invalid(id))
    this.#watched = keys
    return keys
  }

  /**
   * Folds in what other instances published (values of `sharedKeys()`, null when absent): an open
   * circuit opens here until the same time, a cooldown or an invalid mark of the key's current health
   * epoch applies here too. A missing key changes nothing. What this instance published itself reads
   * back as a no-op.
   */
  observe(keys: readonly string[], values: ReadonlyArray<string | null>): void {
    const now = this.#deps.clock.now()
    for (let i = 0; i < keys.length; i++) {
      const value = values[i]
      if (value !== null && value !== undefined) this.#adopt(keys[i]!, value, now)
    }
  }

  /** Whether the provider's circuit lets calls through now. */
  providerAvailable(provider: ProviderConfig, cfg: CircuitSettings, now: number): boolean {
    const entry = this.#providers.get(provider.id)
    return provider.enabled && (!entry || entry.breaker.allows(now, cfg))
  }

  /** Whether a key can take a call now: active, accepted by the upstream, not cooling down, circuit not open. */
  keyAvailable(key: KeyConfig, cfg: CircuitSettings, now: number): boolean {
    if (key.state !== 'active') return false
    const entry = this.#keys.get(key.id)
    if (!entry) return true
    this.#expire(entry, now)
    return entry.health.condition(now) === 'ok' && entry.health.breaker.allows(now, cfg)
  }

  /** When a cooling key may be used again (null: it is not cooling, or it is out for another reason). */
  cooldownEnds(key: KeyConfig, cfg: CircuitSettings, now: number): number | null {
    const entry = this.#keys.get(key.id)
    if (!entry || key.state !== 'active' || entry.health.condition(now) !== 'cooling') return null
    return entry.health.breaker.state(now) === 'open' ? null : entry.health.cooldownUntil
  }

  /** When the provider's or the key's open circuit lets a probe through, whichever is later. */
  reopensAt(provider: ProviderConfig, key: KeyConfig | null, now: number): number | null {
    const p = this.#providers.get(provider.id)?.breaker.reopensAt(now) ?? null
    const k = key ? (this.#keys.get(key.id)?.health.breaker.reopensAt(now) ?? null) : null
    return p === null ? k : k === null ? p : Math.max(p, k)
  }

  load(key: KeyConfig): KeyLoad {
    const entry = this.#keys.get(key.id)
    if (!entry) return { inFlight: 0, recent: 0 }
    const c = entry.health.recent.counts(this.#deps.clock.now(), RECENT_WINDOW_S)
    return { inFlight: entry.health.inFlight, recent: c.success + c.failure }
  }

  /** Takes the circuits' permission for a call, or null when either circuit refuses. */
  acquire(provider: ProviderConfig, key: KeyConfig | null, cfg: CircuitSettings, now: number): Lease | null {
    const p = this.#providers.get(provider.id)
    if (!p) return null
    const k = key ? this.#keys.get(key.id) : null
    if (key && !k) return null
    const providerPermit = p.breaker.tryAcquire(now, cfg)
    if (!providerPermit) return null
    let keyPermit: Permit | null = null
    if (k) {
      keyPermit = k.health.breaker.tryAcquire(now, cfg)
      if (!keyPermit) {
        p.breaker.release(providerPermit)
        return null
      }
    }
    p.inFlight++
    if (k) {
      k.health.inFlight++
      k.health.lastUsedAt = now
    }
    return { provider: p, key: k ?? null, permits: { provider: providerPermit, key: keyPermit }, ended: false }
  }

  succeeded(lease: Lease): void {
    const now = this.#deps.clock.now()
    lease.provider.recent.record(now, true)
    lease.provider.breaker.onSuccess(now, lease.permits.provider)
    if (lease.key) {
      lease.key.health.recordSuccess(now)
      lease.key.health.breaker.onSuccess(now, lease.permits.key)
      this.#persistKey(lease.key)
    }
  }

  /** Books a failed call: key health (401/403 invalid, 429 cooldown), circuits for availability failures. */
  failed(lease: Lease, outcome: FailureOutcome, message: string, policy: EffectivePolicy, permits: Lease['permits'] | null = lease.permits): void {
    const now = this.#deps.clock.now()
    const cfg = policy.circuit
    const { provider: p, key: k } = lease
    if (outcome.availability) {
      p.recent.record(now, false)
      p.breaker.onFailure(now, cfg, permits?.provider ?? null, outcome.reason)
    } else if (outcome.reason === 'bad_request' || outcome.reason === 'not_found') {
      // the upstream answered: it is up, whatever it thought of the request
      p.breaker.onSuccess(now, permits?.provider ?? null)
    } else {
      p.breaker.release(permits?.provider ?? null)
    }
    if (!k) return
    const h = k.health
    if (outcome.availability) {
      h.recordFailure(now, message)
      h.breaker.onFailure(now, cfg, permits?.key ?? null, outcome.reason)
    } else if (outcome.reason === 'bad_request' || outcome.reason === 'not_found') {
      h.breaker.onSuccess(now, permits?.key ?? null)
    } else {
      h.breaker.release(permits?.key ?? null)
    }
    if (outcome.reason === 'key_rejected') {
      h.recordFailure(now, message)
      const change = h.markInvalid(now, message)
      this.#announce(k, change, now)
      if (change) this.#publishMark(sharedKeys.invalid(k.id), { epoch: h.epoch, reason: h.reason ?? 'rejected by the upstream' }, INVALID_TTL_MS)
    } else if (outcome.reason === 'rate_limited') {
      h.recordFailure(now, message)
      const until = now + (outcome.retryAfterMs ?? policy.keys.cooldown_ms)
      this.#announce(k, h.coolDown(now, until, outcome.retryAfterMs !== null ? `upstream 429, Retry-After ${Math.ceil(outcome.retryAfterMs / 1000)} s` : 'upstream 429'), now)
      if (h.cooldownUntil === until && h.health !== 'invalid') this.#publishMark(sharedKeys.cooldown(k.id), { epoch: h.epoch, reason: h.reason ?? 'upstream 429', until }, until - now)
    }
    this.#persistKey(k)
  }

  /** Frees the call's in-flight slots; idempotent. */
  end(lease: Lease): void {
    if (lease.ended) return
    lease.ended = true
    lease.provider.inFlight = Math.max(0, lease.provider.inFlight - 1)
    if (lease.key) lease.key.health.inFlight = Math.max(0, lease.key.health.inFlight - 1)
  }

  health(snapshot: ConfigSnapshot, cfg: CircuitSettings): GatewayHealth {
    this.sync(snapshot)
    const now = this.#deps.clock.now()
    const providers: ProviderHealthView[] = []
    for (const p of snapshot.providers.values()) {
      const entry = this.#providers.get(p.id)
      const keys = p.keys.map((key) => this.keyView(key, cfg, now))
      providers.push({
        name: p.name,
        type: p.type,
        enabled: p.enabled,
        circuit: entry ? entry.breaker.view(now, cfg) : closedView(),
        inFlight: entry?.inFlight ?? 0,
        recent: entry ? entry.recent.counts(now, RECENT_WINDOW_S) : { success: 0, failure: 0 },
        keys,
      })
    }
    return { at: now, providers: providers.sort((a, b) => a.name.localeCompare(b.name)) }
  }

  keyView(key: KeyConfig, cfg: CircuitSettings, now: number): KeyHealthView {
    const k = this.#keys.get(key.id)
    if (k) this.#expire(k, now)
    const h = k?.health
    return {
      id: key.id,
      label: key.label,
      state: key.state,
      health: h ? h.condition(now) : 'ok',
      healthy: h ? h.condition(now) === 'ok' : true,
      reason: h?.reason ?? null,
      cooldownUntil: h && h.condition(now) === 'cooling' ? h.cooldownUntil : null,
      available: this.keyAvailable(key, cfg, now),
      circuit: h ? h.breaker.view(now, cfg) : closedView(),
      inFlight: h?.inFlight ?? 0,
      consecutiveFailures: h?.consecutiveFailures ?? 0,
      lastError: h?.lastError ?? null,
      lastUsedAt: h?.lastUsedAt ?? null,
      recent: h ? h.recent.counts(now, RECENT_WINDOW_S) : { success: 0, failure: 0 },
    }
  }

  #syncKey(p: ProviderConfig, k: KeyConfig, circuits: CircuitSnapshot, now: number): void {
    const scope = keyScope(k.id)
    let entry = this.#keys.get(k.id)
    if (!entry) {
      const created: KeyEntry = { id: k.id, providerId: p.id, provider: p.name, label: k.label, health: new KeyHealth((t) => this.#circuitMoved(t, this.#providers.get(p.id)!, created)) }
      entry = created
      this.#keys.set(k.id, entry)
      if (k.health) {
        const restored = entry.health.restore(k.health, now)
        if (restored !== 'ok') this.#emitKey(entry, { from: 'ok', to: restored, reason: `restored: ${k.health.reason ?? restored}` }, now)
      }
      const persisted = circuits.states.get(scope)
      if (persisted) entry.health.breaker.restore(persisted.state, persisted.openUntil, now)
    } else if (k.health && k.health.epoch > entry.health.epoch) {
      entry.health.epoch = k.health.epoch
      this.#announce(entry, entry.health.reset(now, 'operator re-enabled the key'), now)
      this.#persistKey(entry)
      // Other instances ignore marks of an older epoch once they see the re-enable; clear them anyway.
      this.#deps.shared?.clearOlderThan(sharedKeys.invalid(k.id), k.health.epoch)
      this.#deps.shared?.clearOlderThan(sharedKeys.cooldown(k.id), k.health.epoch)
      this.#deps.shared?.clear(sharedKeys.circuit(scope))
    }
    entry.label = k.label
    entry.provider = p.name
    this.#applyOverride(scope, entry.health.breaker, circuits.overrides.get(scope), now)
  }

  #applyOverride(scope: string, breaker: CircuitBreaker, override: OverrideConfig | undefined, now: number): void {
    const epoch = override?.epoch ?? 0
    const seen = this.#epochs.get(scope)
    if (seen !== undefined && epoch > seen) {
      breaker.reset(now, 'operator reset')
      this.#deps.shared?.clear(sharedKeys.circuit(scope))
    }
    this.#epochs.set(scope, epoch)
    breaker.setOverride(override?.mode ?? null, now)
  }

  #publishMark(key: string, mark: KeyMark, ttlMs: number): void {
    this.#deps.shared?.publish(key, JSON.stringify({ ...mark, reason: mark.reason.slice(0, 300) }), ttlMs)
  }

  /** One shared value read by the poll: 'circuit:p:<id>' | 'circuit:k:<id>' | 'cooldown:k:<id>' | 'invalid:k:<id>'. */
  #adopt(key: string, value: string, now: number): void {
    const [kind, scope, idText] = key.split(':')
    const id = Number(idText)
    if (kind === 'circuit') {
      const until = Number(value)
      if (!Number.isFinite(until) || until <= now) return
      const breaker = scope === 'p' ? this.#providers.get(id)?.breaker : this.#keys.get(id)?.health.breaker
      breaker?.adoptOpen(until, now, 'opened by another instance')
      return
    }
    const entry = this.#keys.get(id)
    const mark = entry ? parseKeyMark(value) : null
    // a mark of another epoch: stale (the key was re-enabled since), or newer than this instance's snapshot (wait for it)
    if (!entry || !mark || mark.epoch !== entry.health.epoch) return
    const h = entry.health
    if (kind === 'cooldown') {
      if (mark.until === undefined || mark.until <= now) return
      const before = h.cooldownUntil
      this.#announce(entry, h.coolDown(now, mark.until, `${mark.reason} (seen by another instance)`), now)
      if (h.cooldownUntil !== before) this.#persistKey(entry)
    } else if (kind === 'invalid' && h.health !== 'invalid') {
      this.#announce(entry, h.markInvalid(now, `${mark.reason} (seen by another instance)`), now)
      this.#persistKey(entry)
    }
  }

  #expire(entry: KeyEntry, now: number): void {
    const change = entry.health.expireCooldown(now)
    if (change) {
      this.#emitKey(entry, change, now)
      this.#persistKey(entry)
    }
  }

  #announce(entry: KeyEntry, change: ConditionChange | null, now: number): void {
    if (change) this.#emitKey(entry, change, now)
  }

  #emitKey(entry: KeyEntry, change: ConditionChange, now: number): void {
    this.#deps.events?.keyHealth({
      provider: entry.provider,
      key: entry.label,
      keyId: entry.id,
      from: change.from,
      to: change.to,
      reason: change.reason,
      cooldownUntil: change.to === 'cooling' ? entry.health.cooldownUntil : null,
      at: now,
    })
  }

  #persistKey(entry: KeyEntry): void {
    const h = entry.health
    this.#deps.sink?.keyHealth({
      keyId: entry.id,
      epoch: h.epoch,
      health: h.health,
      reason: h.reason,
      changedAt: h.changedAt,
      cooldownUntil: h.cooldownUntil,
      consecutiveFailures: h.consecutiveFailures,
      lastError: h.lastError,
      lastUsedAt: h.lastUsedAt,
    })
  }

  #circuitMoved(t: CircuitTransition, provider: ProviderEntry, key: KeyEntry | null): void {
    this.#deps.events?.circuit({
      scope: key ? 'key' : 'provider',
      provider: provider.name,
      key: key?.label ?? null,
      keyId: key?.id ?? null,
      from: t.from,
      to: t.to,
      reason: t.reason,
      openUntil: t.openUntil,
      at: t.at,
    })
    if (t.operator) return
    // Another instance's opening is not published back; half-open and closed need nothing shared (the open period's TTL ends with it).
    if (t.to === 'open' && !t.shared && t.openUntil !== null) {
      this.#deps.shared?.publish(sharedKeys.circuit(key ? keyScope(key.id) : providerScope(provider.id)), String(t.openUntil), t.openUntil - t.at)
    }
    this.#deps.sink?.circuit({
      scope: key ? keyScope(key.id) : providerScope(provider.id),
      providerId: provider.id,
      keyId: key?.id ?? null,
      state: t.to,
      openUntil: t.openUntil,
      at: t.at,
    })
  }
}

function closedView(): CircuitView {
  return { state: 'closed', override: null, openUntil: null, consecutiveFailures: 0, probesInFlight: 0, window: { success: 0, failure: 0 } }
}
