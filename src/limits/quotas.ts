/**
 * Token usage per client and UTC calendar period (day, month), kept so a restart does not reset quotas.
 *
 * Usage is recorded in memory on the request path and written behind in one transaction every
 * `flushMs` (and on close), never while a request waits. At start the current periods' totals are
 * loaded; they seed the limiter's quota counters (and seed Redis again if it lost them). Totals are
 * re-read now and then, so a seed also covers what other instances sharing the store have written.
 */
import type { QuotaPeriod } from './types.js'

export interface QuotaUsageRow {
  clientId: number
  period: QuotaPeriod
  /** 'YYYY-MM-DD' or 'YYYY-MM' (UTC) */
  periodKey: string
  tokens: number
}

/** Where the book persists to; the composition root wires it to the SQLite store. */
export interface QuotaStore {
  /** adds each row's tokens to its stored total, all in one transaction */
  add(rows: QuotaUsageRow[]): Promise<unknown>
  /** the stored totals of one day and one month */
  load(day: string, month: string): Promise<QuotaUsageRow[]>
}

export interface Periods {
  day: string
  dayEndsAt: number
  month: string
  monthEndsAt: number
  startsAt: number
}

export function periodsAt(now: number): Periods {
  const d = new Date(now)
  const y = d.getUTCFullYear()
  const m = d.getUTCMonth()
  const startsAt = Date.UTC(y, m, d.getUTCDate())
  const iso = new Date(startsAt).toISOString()
  return { day: iso.slice(0, 10), dayEndsAt: startsAt + 86_400_000, month: iso.slice(0, 7), monthEndsAt: Date.UTC(y, m + 1, 1), startsAt }
}

export interface QuotaBookOptions {
  store: QuotaStore | null
  clock?: () => number
  /** how often recorded usage is written (default 500 ms); 0: only on flush() */
  flushMs?: number
  /** how often current totals are re-read from the store (default 5 s) */
  refreshMs?: number
  onError?: (err: unknown) => void
}

const rowKey = (clientId: number, period: QuotaPeriod, periodKey: string) => `${clientId}|${period}|${periodKey}`

export class QuotaBook {
  readonly #store: QuotaStore | null
  readonly #clock: () => number
  readonly #refreshMs: number
  readonly #onError: (err: unknown) => void
  readonly #timer: NodeJS.Timeout | null
  /** stored totals as of the last load */
  #totals = new Map<string, number>()
  /** recorded, not yet written */
  #pending = new Map<string, QuotaUsageRow>()
  /** being written right now */
  #writing = new Map<string, QuotaUsageRow>()
  #periods: Periods
  #lastRefresh = 0
  #flushing: Promise<void> | null = null

  constructor(opts: QuotaBookOptions) {
    this.#store = opts.store
    this.#clock = opts.clock ?? Date.now
    this.#refreshMs = opts.refreshMs ?? 5_000
    this.#onError = opts.onError ?? (() => undefined)
    this.#periods = periodsAt(this.#clock())
    const every = opts.flushMs ?? 500
    this.#timer = every > 0 && this.#store ? setInterval(() => void this.flush(), every) : null
    this.#timer?.unref()
  }

  /** Loads the current day's and month's totals. */
  async load(): Promise<void> {
    if (!this.#store) return
    const p = this.periods()
    const rows = await this.#store.load(p.day, p.month)
    const totals = new Map<string, number>()
    for (const r of rows) totals.set(rowKey(r.clientId, r.period, r.periodKey), r.tokens)
    this.#totals = totals
    this.#lastRefresh = this.#clock()
  }

  /** The UTC day and month at `now` (cached until the day ends). */
  periods(now = this.#clock()): Periods {
    const p = this.#periods
    if (now >= p.startsAt && now < p.dayEndsAt) return p
    this.#periods = periodsAt(now)
    return this.#periods
  }

  /** Tokens used in a period: stored total plus what this instance recorded since. */
  used(clientId: number, period: QuotaPeriod, periodKey: string): number {
    const key = rowKey(clientId, period, periodKey)
    return (this.#totals.get(key) ?? 0) + (this.#pending.get(key)?.tokens ?? 0) + (this.#writing.get(key)?.tokens ?? 0)
  }

  record(clientId: number, day: string, month: string, tokens: number): void {
    if (tokens <= 0) return
    this.#add(clientId, 'day', day, tokens)
    this.#add(clientId, 'month', month, tokens)
  }

  #add(clientId: number, period: QuotaPeriod, periodKey: string, tokens: number): void {
    const key = rowKey(clientId, period, periodKey)
    const row = this.#pending.get(key)
    if (row) row.tokens += tokens
    else this.#pending.set(key, { clientId, period, periodKey, tokens })
  }

  /** Writes what was recorded (one transaction), and re-reads the totals when they are due. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = null
    })
    return this.#flushing
  }

  async #flush(): Promise<void> {
    const store = this.#store
    if (!store) return
    if (this.#pending.size > 0) {
      this.#writing = this.#pending
      this.#pending = new Map()
      const rows = [...this.#writing.values()]
      try {
        await store.add(rows)
        for (const [key, row] of this.#writing) this.#totals.set(key, (this.#totals.get(key) ?? 0) + row.tokens)
      } catch (err) {
        // Keep the rows for the next attempt; losing usage would let a client past its quota.
        for (const row of rows) this.#add(row.clientId, row.period, row.periodKey, row.tokens)
        this.#onError(err)
      } finally {
        this.#writing = new Map()
      }
    }
    if (this.#clock() - this.#lastRefresh >= this.#refreshMs) {
      try {
        await this.load()
      } catch (err) {
        this.#onError(err)
      }
    }
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    await this.flush()
    // A flush that was already running may have left newer rows behind.
    if (this.#pending.size > 0) await this.flush()
  }
}
