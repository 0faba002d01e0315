/**
 * What the gateway knows about one upstream key: whether the upstream accepts it (`invalid` after a
 * 401/403, until the key is rotated or re-enabled), whether it is cooling down after a 429, how many
 * requests it has in flight, its recent outcomes, and its own circuit breaker. The registry
 * (health-registry.ts) owns these, announces changes and writes them behind.
 */
import type { KeyHealth as StoredHealth } from '../store/schema.js'
import type { PersistedKeyHealth } from '../store/repos/key-health.js'
import { CircuitBreaker, type CircuitTransition } from './circuit-breaker.js'
import type { KeyCondition } from './events.js'
import { RollingWindow } from './rolling-window.js'

export const RECENT_WINDOW_S = 60

export interface ConditionChange {
  from: KeyCondition
  to: KeyCondition
  reason: string
}

export class KeyHealth {
  health: StoredHealth = 'ok'
  reason: string | null = null
  changedAt: number | null = null
  cooldownUntil: number | null = null
  /** the store's health epoch this state belongs to (`proxy keys enable` bumps it) */
  epoch = 0
  inFlight = 0
  consecutiveFailures = 0
  lastError: string | null = null
  lastUsedAt: number | null = null
  readonly recent = new RollingWindow(RECENT_WINDOW_S)
  readonly breaker: CircuitBreaker

  constructor(onTransition: (t: CircuitTransition) => void) {
    this.breaker = new CircuitBreaker(onTransition)
  }

  condition(now: number): KeyCondition {
    if (this.health === 'invalid') return 'invalid'
    return this.cooldownUntil !== null && now < this.cooldownUntil ? 'cooling' : 'ok'
  }

  /** Restores what an earlier run wrote; returns the condition it restored, if not ok. */
  restore(p: PersistedKeyHealth, now: number): KeyCondition {
    this.epoch = p.epoch
    this.health = p.health
    this.reason = p.reason
    this.changedAt = p.changedAt
    this.cooldownUntil = p.cooldownUntil !== null && p.cooldownUntil > now ? p.cooldownUntil : null
    return this.condition(now)
  }

  markInvalid(now: number, reason: string): ConditionChange | null {
    const from = this.condition(now)
    this.health = 'invalid'
    this.reason = reason
    this.changedAt = now
    this.cooldownUntil = null
    return from === 'invalid' ? null : { from, to: 'invalid', reason }
  }

  coolDown(now: number, until: number, reason: string): ConditionChange | null {
    if (this.health === 'invalid') return null
    const from = this.condition(now)
    if (this.cooldownUntil !== null && this.cooldownUntil >= until) return null
    this.cooldownUntil = until
    this.reason = reason
    this.changedAt = now
    return from === 'cooling' ? null : { from, to: 'cooling', reason }
  }

  /** Ends a cooldown whose time is up; reports it once. */
  expireCooldown(now: number): ConditionChange | null {
    if (this.cooldownUntil === null || now < this.cooldownUntil) return null
    this.cooldownUntil = null
    if (this.health === 'invalid') return null
    this.reason = null
    this.changedAt = now
    return { from: 'cooling', to: 'ok', reason: 'cooldown over' }
  }

  /** Forgets everything bad (the operator re-enabled the key). */
  reset(now: number, reason: string): ConditionChange | null {
    const from = this.condition(now)
    this.health = 'ok'
    this.reason = null
    this.changedAt = now
    this.cooldownUntil = null
    this.consecutiveFailures = 0
    this.lastError = null
    this.breaker.reset(now, reason)
    return from === 'ok' ? null : { from, to: 'ok', reason }
  }

  recordSuccess(now: number): void {
    this.recent.record(now, true)
    this.consecutiveFailures = 0
  }

  recordFailure(now: number, message: string): void {
    this.recent.record(now, false)
    this.consecutiveFailures++
    this.lastError = message.slice(0, 300)
  }
}
