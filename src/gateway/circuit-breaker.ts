/**
 * One circuit breaker: closed -> open after N consecutive failures or a failure rate over a window;
 * open for open_s, then half-open, where up to half_open_probes calls go through; a probe success
 * closes it, a probe failure re-opens it. Operators may force it open or closed.
 *
 * Only availability failures count (5xx, timeouts, broken connections); the caller decides that.
 * Time comes in as `now` on every call, so the state machine is a pure function of its inputs.
 */
import type { EffectivePolicy } from '../core/policy-schema.js'
import { RollingWindow, type Counts } from './rolling-window.js'

export type CircuitState = 'closed' | 'open' | 'half_open'
export type CircuitSettings = EffectivePolicy['circuit']
export type CircuitOverride = 'open' | 'closed' | null

export interface CircuitTransition {
  from: CircuitState
  to: CircuitState
  reason: string
  openUntil: number | null
  at: number
  /** an operator override changed the effective state; the breaker's own state did not move */
  operator: boolean
  /** another instance opened this circuit (shared state, adoptOpen): it is not published again */
  shared?: boolean
}

/** Proof that a call was let through; hand it back with the outcome. */
export interface Permit {
  readonly probe: boolean
  /** the breaker's generation when the call started: outcomes of calls from an older state do not move it */
  readonly generation: number
}

export interface CircuitView {
  state: CircuitState
  override: CircuitOverride
  openUntil: number | null
  consecutiveFailures: number
  probesInFlight: number
  window: Counts
}

export class CircuitBreaker {
  #state: CircuitState = 'closed'
  #openUntil: number | null = null
  #consecutive = 0
  #probes = 0
  #generation = 0
  #override: CircuitOverride = null
  readonly #window = new RollingWindow()
  readonly #onTransition: (t: CircuitTransition) => void

  constructor(onTransition: (t: CircuitTransition) => void = () => {}) {
    this.#onTransition = onTransition
  }

  /** The effective state now; an open circuit whose time is up turns half-open here. */
  state(now: number): CircuitState {
    if (this.#override === 'open') return 'open'
    if (this.#override === 'closed') return 'closed'
    if (this.#state === 'open' && this.#openUntil !== null && now >= this.#openUntil) this.#move('half_open', 'open period over', now)
    return this.#state
  }

  /** Whether a call may go now, without taking anything. */
  allows(now: number, cfg: CircuitSettings): boolean {
    const state = this.state(now)
    return state === 'closed' || (state === 'half_open' && this.#probes < cfg.half_open_probes)
  }

  /** When an open circuit will let a probe through (null: it is not open, or an operator holds it open). */
  reopensAt(now: number): number | null {
    return this.state(now) === 'open' && this.#override !== 'open' ? this.#openUntil : null
  }

  /** Lets a call through (taking a probe slot when half-open), or returns null. */
  tryAcquire(now: number, cfg: CircuitSettings): Permit | null {
    const state = this.state(now)
    if (state === 'closed') return { probe: false, generation: this.#generation }
    if (state === 'open') return null
    if (this.#probes >= cfg.half_open_probes) return null
    this.#probes++
    return { probe: true, generation: this.#generation }
  }

  onSuccess(now: number, permit: Permit | null): void {
    this.#window.record(now, true)
    this.#consecutive = 0
    if (permit?.probe) this.#probes = Math.max(0, this.#probes - 1)
    if (this.#override) return
    if (this.#state === 'half_open' && permit?.probe && permit.generation === this.#generation) this.#move('closed', 'probe succeeded', now)
  }

  onFailure(now: number, cfg: CircuitSettings, permit: Permit | null, what = 'failure'): void {
    this.#window.record(now, false)
    this.#consecutive++
    if (permit?.probe) this.#probes = Math.max(0, this.#probes - 1)
    if (this.#override) return
    if (this.#state === 'half_open') {
      if (permit?.probe && permit.generation === this.#generation) this.#open(now, cfg, `probe failed (${what})`)
      return
    }
    if (this.#state !== 'closed') return
    if (this.#consecutive >= cfg.consecutive_failures) {
      this.#open(now, cfg, `${this.#consecutive} consecutive failures (last: ${what})`)
      return
    }
    const { success, failure } = this.#window.counts(now, cfg.window_s)
    const total = success + failure
    if (total >= cfg.min_requests && failure / total >= cfg.failure_rate) {
      this.#open(now, cfg, `failure rate ${Math.round((failure / total) * 100)}% over ${cfg.window_s} s (${failure}/${total})`)
    }
  }

  /** A call that said nothing about availability (the request's own fault, the client left): frees its probe slot. */
  release(permit: Permit | null): void {
    if (permit?.probe) this.#probes = Math.max(0, this.#probes - 1)
  }

  setOverride(mode: CircuitOverride, now: number): void {
    if (mode === this.#override) return
    const before = this.state(now)
    this.#override = mode
    const after = this.state(now)
    if (before !== after) this.#onTransition({ from: before, to: after, reason: `operator: ${mode ?? 'automatic'}`, openUntil: null, at: now, operator: true })
  }

  /** Back to closed with clean counters (operator reset, key re-enabled). */
  reset(now: number, reason = 'reset'): void {
    this.#consecutive = 0
    this.#probes = 0
    this.#window.clear()
    if (this.#state !== 'closed') this.#move('closed', reason, now)
  }

  /**
   * Another instance opened this circuit until `openUntil` (src/gateway/shared-health.ts): open it here
   * too, from closed or half-open (a probe in flight then no longer moves it: its generation is gone).
   * An operator override wins; an open period already at least as long stays; a shorter one is extended.
   * When the period ends this breaker half-opens and probes on its own, like any other.
   */
  adoptOpen(openUntil: number, now: number, reason: string): void {
    if (this.#override !== null || openUntil <= now) return
    if (this.#state === 'open') {
      if (this.#openUntil === null || this.#openUntil < openUntil) this.#openUntil = openUntil
      return
    }
    this.#openUntil = openUntil
    this.#move('open', reason, now, true)
  }

  /** Restores a state persisted by an earlier run, without announcing it as a new transition. */
  restore(state: CircuitState, openUntil: number | null, now: number): void {
    if (state === 'closed') return
    this.#state = 'open'
    this.#openUntil = openUntil ?? now
    this.#generation++
  }

  view(now: number, cfg: Pick<CircuitSettings, 'window_s'>): CircuitView {
    const state = this.state(now)
    return {
      state,
      override: this.#override,
      openUntil: state === 'open' && this.#override !== 'open' ? this.#openUntil : null,
      consecutiveFailures: this.#consecutive,
      probesInFlight: this.#probes,
      window: this.#window.counts(now, cfg.window_s),
    }
  }

  #open(now: number, cfg: CircuitSettings, reason: string): void {
    this.#openUntil = now + cfg.open_s * 1000
    this.#move('open', reason, now)
  }

  #move(to: CircuitState, reason: string, now: number, shared = false): void {
    const from = this.#state
    this.#state = to
    this.#generation++
    if (to === 'closed') {
      this.#consecutive = 0
      this.#openUntil = null
      this.#window.clear()
    }
    if (to === 'half_open') this.#probes = 0
    this.#onTransition({ from, to, reason, openUntil: to === 'open' ? this.#openUntil : null, at: now, operator: false, ...(shared ? { shared: true } : {}) })
  }
}
