/**
 * The in-process backend: sliding logs and quota counters in Maps. A request costs a few Map lookups
 * and O(1) amortized work per rule; there are no timers per key, only one unref'd sweep that drops
 * idle keys (an IP seen once must not stay in memory forever).
 *
 * It also serves as the local fallback of the Redis backend while Redis is unreachable (fail-open).
 */
import { SlidingLog } from './sliding-log.js'
import type { Blocked, ConsumeOutcome, ConsumeRequest, LimitBackend, RateState, SettleOp, SharedState } from './types.js'

export interface MemoryBackendOptions {
  /** epoch ms; tests pass a fake clock */
  clock?: () => number
  /** how often idle keys are dropped (default 60 s); 0 disables the sweep */
  sweepMs?: number
}

interface QuotaCounter {
  used: number
  /** epoch ms when the period ends; the counter is dropped some time after */
  endsAt: number
}

interface StateEntry {
  value: string
  expiresAt: number
}

/** Quota counters are kept a while past their period, so a request admitted just before midnight can still settle. */
const QUOTA_GRACE_MS = 3_600_000

export class MemoryBackend implements LimitBackend, SharedState {
  readonly kind = 'memory' as const
  readonly #clock: () => number
  readonly #logs = new Map<string, SlidingLog>()
  readonly #quotas = new Map<string, QuotaCounter>()
  readonly #state = new Map<string, StateEntry>()
  readonly #sweep: NodeJS.Timeout | null

  constructor(opts: MemoryBackendOptions = {}) {
    this.#clock = opts.clock ?? Date.now
    const every = opts.sweepMs ?? 60_000
    this.#sweep = every > 0 ? setInterval(() => this.sweep(), every) : null
    this.#sweep?.unref()
  }

  available(): boolean {
    return true
  }

  consume(req: ConsumeRequest): ConsumeOutcome {
    const now = this.#clock()
    let blocked: Blocked | null = null
    const logs: SlidingLog[] = []
    const rates: RateState[] = []
    for (let i = 0; i < req.rates.length; i++) {
      const r = req.rates[i]!
      let log = this.#logs.get(r.key)
      if (!log || log.windowMs !== r.windowMs) {
        log = new SlidingLog(r.windowMs)
        this.#logs.set(r.key, log)
      }
      logs.push(log)
      const used = log.used(now)
      if (used + r.cost > r.limit) {
        const wait = log.retryAfter(now, r.cost, r.limit)
        const never = wait === Infinity
        const retryAfterMs = never ? r.windowMs : wait
        if (blocked === null || (blocked.type === 'rate' && retryAfterMs > blocked.retryAfterMs)) blocked = { type: 'rate', index: i, retryAfterMs, never }
      }
      rates.push({ remaining: Math.max(0, r.limit - used), resetMs: log.resetMs(now) })
    }
    const counters: QuotaCounter[] = []
    const quotas: number[] = []
    for (let i = 0; i < req.quotas.length; i++) {
      const q = req.quotas[i]!
      let counter = this.#quotas.get(q.key)
      if (!counter) {
        counter = { used: q.seed, endsAt: q.endsAt }
        this.#quotas.set(q.key, counter)
      }
      counters.push(counter)
      if (counter.used + q.cost > q.limit) {
        const retryAfterMs = Math.max(0, q.endsAt - now)
        // An exhausted quota outranks a rate limit: waiting a few seconds will not help.
        if (blocked === null || blocked.type === 'rate' || retryAfterMs > blocked.retryAfterMs) blocked = { type: 'quota', index: i, retryAfterMs, never: q.cost > q.limit }
      }
      quotas.push(counter.used)
    }
    if (blocked) return { blocked, rates, quotas, now }

    for (let i = 0; i < logs.length; i++) {
      const r = req.rates[i]!
      logs[i]!.add(now, r.cost)
      rates[i] = { remaining: Math.max(0, rates[i]!.remaining - r.cost), resetMs: logs[i]!.resetMs(now) }
    }
    for (let i = 0; i < counters.length; i++) {
      counters[i]!.used += req.quotas[i]!.cost
      quotas[i] = counters[i]!.used
    }
    return { blocked: null, rates, quotas, now }
  }

  settle(op: SettleOp): void {
    const now = this.#clock()
    for (const r of op.rates) this.#logs.get(r.key)?.adjust(op.at, r.delta, now)
    for (const q of op.quotas) {
      const counter = this.#quotas.get(q.key)
      if (counter) counter.used = Math.max(0, counter.used + q.delta)
    }
  }

  /** Drops keys with nothing left in their window, finished quota periods and expired shared state. */
  sweep(): void {
    const now = this.#clock()
    for (const [key, log] of this.#logs) if (log.idle(now)) this.#logs.delete(key)
    for (const [key, q] of this.#quotas) if (q.endsAt + QUOTA_GRACE_MS < now) this.#quotas.delete(key)
    for (const [key, s] of this.#state) if (s.expiresAt <= now) this.#state.delete(key)
  }

  /** How many keys are held (for tests and the sweep's effect). */
  get size(): number {
    return this.#logs.size + this.#quotas.size + this.#state.size
  }

  // SharedState

  async get(key: string): Promise<string | null> {
    return this.getSync(key)
  }

  async getMany(keys: readonly string[]): Promise<Array<string | null>> {
    return keys.map((k) => this.getSync(k))
  }

  getSync(key: string): string | null {
    const entry = this.#state.get(key)
    if (!entry) return null
    if (entry.expiresAt <= this.#clock()) {
      this.#state.delete(key)
      return null
    }
    return entry.value
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#state.set(key, { value, expiresAt: this.#clock() + ttlMs })
  }

  async incr(key: string, ttlMs: number, by = 1): Promise<number> {
    const current = this.getSync(key)
    const next = (current === null ? 0 : Number(current) || 0) + by
    const entry = this.#state.get(key)
    if (entry) entry.value = String(next)
    else this.#state.set(key, { value: String(next), expiresAt: this.#clock() + ttlMs })
    return next
  }

  async del(key: string): Promise<void> {
    this.#state.delete(key)
  }

  async close(): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep)
  }
}
