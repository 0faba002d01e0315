/**
 * The order in which one request tries upstreams: the route's first target with its keys (in the
 * policy's key strategy), then the route's next targets, then the global fallback route. Candidates
 * are checked when their turn comes, so a key that turns invalid or a circuit that opens mid-request
 * is skipped. When a pass is over and attempts remain, the next pass retries what is still available.
 */
import type { ProxyError } from '../core/errors.js'
import type { EffectivePolicy } from '../core/policy-schema.js'
import type { ConfigSnapshot, KeyConfig, ProviderConfig, RouteConfig, RouteTarget } from '../core/config.js'
import type { HealthRegistry } from './health-registry.js'
import type { KeySelector } from './key-selector.js'
import type { FailureOutcome } from './outcome.js'
import { backoffDelay } from './retry.js'

export type { FallbackKind } from '../core/attempt.js'
import type { FallbackKind } from '../core/attempt.js'

export interface Candidate {
  route: RouteConfig
  target: RouteTarget
  key: KeyConfig | null
  /** null: the first choice for this request */
  fallback: FallbackKind | null
}

export type Step = { kind: 'attempt'; candidate: Candidate } | { kind: 'wait'; ms: number } | { kind: 'done' }

interface Slot {
  route: RouteConfig
  target: RouteTarget
  tier: 'first' | 'provider' | 'global'
  /** ordered when the slot is first reached; null until then */
  keys: Array<KeyConfig | null> | null
}

export interface PlanDeps {
  snapshot: ConfigSnapshot
  route: RouteConfig
  policy: EffectivePolicy
  registry: HealthRegistry
  selector: KeySelector
  random: () => number
  /** null when the target's adapter can do the operation, else the error to report if nothing else serves */
  unsupported: (target: RouteTarget) => ProxyError | null
  /** whether a provider without keys can be called anyway (its adapter's capability) */
  keyless: (provider: ProviderConfig) => boolean
  /** only this provider (and key, when named) may serve */
  pin?: { provider: string; key: string | null }
}

export class AttemptPlanner {
  readonly #deps: PlanDeps
  #slots: Slot[]
  #slot = 0
  #key = 0
  #pass = 0
  #offeredThisPass = 0
  #waits = 0
  /** made at the first failure: most requests never fail */
  #providerFailures: Map<number, { count: number; retryAfterMs: number | null }> | null = null
  /** providers this request may not use any more (their budget is spent); made when the first is */
  #skipped: Set<number> | null = null
  /** the first capability error met (e.g. a provider without embeddings) */
  unsupported: ProxyError | null = null

  constructor(deps: PlanDeps) {
    this.#deps = deps
    const { route, policy, snapshot } = deps
    const targets = policy.fallback.route_targets ? route.targets : route.targets.slice(0, 1)
    this.#slots = targets.map((target, i) => ({ route, target, tier: i === 0 ? 'first' : 'provider', keys: null }))
    const globalName = policy.fallback.global_route
    const global = globalName && globalName !== route.model ? snapshot.routes.get(globalName) : undefined
    if (global) for (const target of global.targets) this.#slots.push({ route: global, target, tier: 'global', keys: null })
    const pin = deps.pin
    if (pin) this.#slots = this.#slots.filter((slot) => slot.target.provider.name === pin.provider)
  }

  get pass(): number {
    return this.#pass
  }

  next(now: number): Step {
    const cfg = this.#deps.policy.circuit
    for (;;) {
      if (this.#slot >= this.#slots.length) {
        const offered = this.#offeredThisPass
        this.#slot = 0
        this.#key = 0
        this.#offeredThisPass = 0
        this.#pass++
        if (offered > 0) {
          if (this.#pass > this.#deps.policy.retry.max_attempts) return { kind: 'done' }
          continue
        }
        // Nothing could be tried: wait for a cooling key when its upstream asked for little enough.
        const wake = this.#earliestCooldown(now)
        if (wake !== null && this.#waits < 3 && wake - now <= this.#deps.policy.retry.retry_after_cap_ms) {
          this.#waits++
          return { kind: 'wait', ms: Math.max(0, wake - now) }
        }
        return { kind: 'done' }
      }
      const slot = this.#slots[this.#slot]!
      const keys = (slot.keys ??= this.#orderKeys(slot, now))
      if (this.#key >= keys.length) {
        this.#slot++
        this.#key = 0
        continue
      }
      const key = keys[this.#key++]!
      const provider = slot.target.provider
      if (this.#skipped?.has(provider.id) || !this.#deps.registry.providerAvailable(provider, cfg, now)) {
        this.#key = keys.length // the whole provider is out: skip its other keys too
        continue
      }
      if (key && !this.#deps.registry.keyAvailable(key, cfg, now)) continue
      this.#offeredThisPass++
      const fallback = slot.tier === 'global' ? 'global' : slot.tier === 'provider' ? 'provider' : key === keys[0] ? null : 'key'
      return { kind: 'attempt', candidate: { route: slot.route, target: slot.target, key, fallback } }
    }
  }

  /** Leaves a provider out of the rest of this request (a spent budget), without counting it as a failure. */
  skipProvider(provider: ProviderConfig): void {
    ;(this.#skipped ??= new Set()).add(provider.id)
  }

  /** Books a failure so later attempts on the same provider back off. */
  failed(candidate: Candidate, outcome: FailureOutcome): void {
    if (!outcome.availability) return
    const id = candidate.target.provider.id
    const failures = (this.#providerFailures ??= new Map())
    const seen = failures.get(id)
    failures.set(id, { count: (seen?.count ?? 0) + 1, retryAfterMs: outcome.retryAfterMs })
  }

  /**
   * How long to wait before calling this candidate: nothing for a provider that has not failed in this
   * request (fallbacks go at once), else full-jitter backoff, at least the upstream's Retry-After (capped).
   */
  waitBefore(candidate: Candidate): number {
    const failures = this.#providerFailures?.get(candidate.target.provider.id)
    if (!failures) return 0
    const { retry } = this.#deps.policy
    const backoff = backoffDelay(failures.count, retry.backoff_ms, this.#deps.random)
    return failures.retryAfterMs === null ? backoff : Math.max(backoff, Math.min(failures.retryAfterMs, retry.retry_after_cap_ms))
  }

  /** Why nothing (more) could be tried, and when something may recover: for the final 503. */
  explain(now: number): { reasons: string[]; retryAt: number | null } {
    const { registry, policy } = this.#deps
    const cfg = policy.circuit
    const reasons: string[] = []
    let retryAt: number | null = null
    const later = (t: number | null) => {
      if (t !== null && t > now) retryAt = retryAt === null ? t : Math.min(retryAt, t)
    }
    const seen = new Set<number>()
    for (const slot of this.#slots) {
      const p = slot.target.provider
      if (seen.has(p.id)) continue
      seen.add(p.id)
      if (!p.enabled) {
        reasons.push(`provider '${p.name}' is disabled`)
        continue
      }
      if (!registry.providerAvailable(p, cfg, now)) {
        const at = registry.reopensAt(p, null, now)
        later(at)
        reasons.push(`provider '${p.name}': circuit open${at ? ` until ${new Date(at).toISOString()}` : ' (operator)'}`)
        continue
      }
      const active = p.keys.filter((k) => k.state === 'active')
      if (active.length === 0 && !(p.keys.length === 0 && this.#deps.keyless(p))) {
        reasons.push(`provider '${p.name}' has no active key`)
        continue
      }
      for (const key of active) {
        const k = registry.keyView(key, cfg, now)
        if (k.available) continue
        if (k.health === 'invalid') reasons.push(`key '${k.label}' of '${p.name}' was rejected by the upstream`)
        else if (k.health === 'cooling') {
          later(k.cooldownUntil)
          reasons.push(`key '${k.label}' of '${p.name}' is cooling down after a 429`)
        } else {
          later(k.circuit.openUntil)
          reasons.push(`key '${k.label}' of '${p.name}': circuit ${k.circuit.state}`)
        }
      }
    }
    return { reasons, retryAt }
  }

  #orderKeys(slot: Slot, now: number): Array<KeyConfig | null> {
    const { registry, selector, policy } = this.#deps
    const provider = slot.target.provider
    const unsupported = this.#deps.unsupported(slot.target)
    if (unsupported) {
      this.unsupported ??= unsupported
      return []
    }
    if (provider.keys.length === 0) return this.#deps.keyless(provider) ? [null] : []
    const pinned = this.#deps.pin?.key
    if (pinned) return provider.keys.filter((k) => k.label === pinned && k.state === 'active')
    // One key, the common case: it is tried, out of service or not (see below), if it is active.
    if (provider.keys.length === 1) return provider.keys[0]!.state === 'active' ? [provider.keys[0]!] : []
    const active = provider.keys.filter((k) => k.state === 'active')
    const usable = active.filter((k) => registry.keyAvailable(k, policy.circuit, now))
    const ordered: KeyConfig[] = selector.order(provider.id, usable, policy.keys.strategy, (k) => registry.load(k))
    // Keys out right now stay at the end: a cooldown may end before a later pass.
    for (const k of active) if (!usable.includes(k)) ordered.push(k)
    return policy.fallback.other_keys ? ordered : ordered.slice(0, 1)
  }

  #earliestCooldown(now: number): number | null {
    const { registry, policy } = this.#deps
    let earliest: number | null = null
    for (const slot of this.#slots) {
      if (this.#skipped?.has(slot.target.provider.id) || !registry.providerAvailable(slot.target.provider, policy.circuit, now)) continue
      for (const key of slot.keys ?? []) {
        if (!key) continue
        const until = registry.cooldownEnds(key, policy.circuit, now)
        if (until !== null && (earliest === null || until < earliest)) earliest = until
      }
    }
    return earliest
  }
}
