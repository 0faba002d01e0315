/**
 * The limits module's contracts: what a limit is, what a backend must do with a request's limits, and the
 * small shared key-value state other parts (circuit breakers, key cooldowns) may keep in the same backend.
 *
 * Two backends implement them: `memory` (one process) and `redis` (several instances share counters).
 * Both apply the same algorithm (see sliding-log.ts) with the same resolution, so a test suite runs
 * unchanged against either.
 */

import type { WindowLimit } from '../core/windows.js'

export type { LimitKind, WindowLimit } from '../core/windows.js'
export type LimitScope = 'global' | 'client' | 'team' | 'ip' | 'model'

/** A window limit bound to a counter: the unit a backend checks. */
export interface RateRule extends WindowLimit {
  scope: LimitScope
  /** the counter's name, unique per scope subject, kind and window (not per limit value: changing a limit keeps its history) */
  key: string
  /** what the rule limits, for messages: the client's name, the IP, the model */
  subject: string | null
}

export type QuotaPeriod = 'day' | 'month'

/** A calendar token quota (UTC): fixed period, persisted across restarts. */
export interface QuotaRule {
  period: QuotaPeriod
  /** 'YYYY-MM-DD' for a day, 'YYYY-MM' for a month (UTC) */
  periodKey: string
  clientId: number
  client: string
  /** who the quota belongs to, for messages, when not the client itself ("team 'x'") */
  owner?: string
  key: string
  limit: number
  /** epoch ms when the period ends (and the quota refills) */
  endsAt: number
  /** tokens already used in this period as far as this instance knows (the store's total plus unflushed usage) */
  seed: number
}

/** One rate rule checked for one request. */
export interface RateCheck {
  key: string
  limit: number
  windowMs: number
  cost: number
}

/** One quota checked for one request. */
export interface QuotaCheck {
  key: string
  limit: number
  cost: number
  /** the counter's starting value when the backend has none (after a restart, or a Redis flush) */
  seed: number
  /** epoch ms when the period ends: the retry time of an exhausted quota; the counter is dropped an hour later */
  endsAt: number
}

export interface ConsumeRequest {
  rates: RateCheck[]
  quotas: QuotaCheck[]
}

/** A rate counter after the check: what the x-ratelimit-* headers report. */
export interface RateState {
  /** what is left in the window (after this request when admitted) */
  remaining: number
  /** ms until the window is back to its full limit */
  resetMs: number
}

export type Blocked =
  | { type: 'rate'; index: number; retryAfterMs: number; never: boolean }
  | { type: 'quota'; index: number; retryAfterMs: number; never: boolean }

export interface ConsumeOutcome {
  /** null: every rule admitted the request and consumed its cost; otherwise none did */
  blocked: Blocked | null
  rates: RateState[]
  /** tokens used per quota (after this request when admitted) */
  quotas: number[]
  /** the backend's clock when it decided (epoch ms): Redis TIME for the redis backend */
  now: number
}

/** A correction after the request finished: the estimate's difference from the actual usage. */
export interface SettleOp {
  rates: Array<{ key: string; windowMs: number; delta: number }>
  quotas: Array<{ key: string; delta: number }>
  /** the backend clock of the admission (ConsumeOutcome.now): it names the slot the estimate went into */
  at: number
}

/**
 * A limits backend. `consume` checks every rule of a request and consumes from all of them, or from
 * none: a request is admitted by every limit or refused without a trace. `settle` is fire-and-forget.
 */
export interface LimitBackend {
  readonly kind: 'memory' | 'redis'
  consume(req: ConsumeRequest): ConsumeOutcome | Promise<ConsumeOutcome>
  settle(op: SettleOp): void
  /** false while the backend cannot be reached (callers then fail open or closed without waiting) */
  available(): boolean
  close(): Promise<void>
}

/** Small shared state with expiry in the same backend (circuits, key cooldowns): see src/core/shared-state.ts. */
export type { SharedState } from '../core/shared-state.js'

/** Where a limiter reports what it refused and when its shared backend fails. */
export interface LimitMetrics {
  rateLimited(scope: string): void
}
