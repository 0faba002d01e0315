/**
 * The audit trail and usage counters, written off the request path. `add()` only puts the finished
 * request record in a bounded ring buffer; every `flushMs` (or as soon as `flushRows` wait) the buffered
 * records become one batch of rows and summed usage deltas for the sink: the server's sink is the audit
 * thread, which commits them in large transactions; the inline sink commits each batch on the shared
 * connection. A crash loses what was not committed yet (about one interval); `close()` writes the rest,
 * so a clean shutdown loses nothing. When the store refuses writes (locked, disk full) rows are kept and
 * retried (by the thread, or here as the batch the inline sink refused); past `maxBuffered` the oldest
 * are dropped and counted.
 */
import { findRoute } from '../store/route-patterns.js'
import { clip } from '../core/clip.js'
import type { Store } from '../store/db.js'
import type { WriteStatement } from '../store/audit-batch.js'
import type { AuditSink, AuditSinkEvents } from '../store/audit-sink.js'
import { simpleStoreWriter } from '../store/store-writer.js'
import { costUsd, priceIn } from '../core/prices.js'
import { auditRowValues, type NewAuditRow } from '../store/repos/audit.js'
import type { UsageDelta } from '../store/repos/usage.js'
import type { ConfigSnapshot } from '../core/config.js'
import type { Logger } from './logger.js'
import type { ProxyMetrics } from './metrics.js'
import { SecretScrubber } from './redact.js'
import { onceAMinute } from './once-a-minute.js'
import type { CaptureOffload, CaptureUpload } from './capture-offload.js'
import { fallbackKind } from './metrics.js'
import type { RequestRecord } from './request-record.js'

export interface AuditWriterOptions {
  store: Store
  config: () => ConfigSnapshot
  logger: Logger
  metrics?: ProxyMetrics
  /** makes the sink batches go to, given what to tell; default: inline on the store's shared connection (PostgreSQL: its batch writer on the store's pool). Closed by close(). */
  sink?: (events: AuditSinkEvents) => AuditSink
  /** default 300 ms here; the server uses PROXY_AUDIT_FLUSH_MS (100 ms) */
  flushMs?: number
  /** records kept while the store is not accepting writes; default 50 000 */
  maxBuffered?: number
  /** rows per transaction, so one batch stays short; default 2 000 */
  batchRows?: number
  /**
   * a flush starts as soon as this many records wait, without waiting for the interval; default 64. Under
   * load records then leave memory within tens of milliseconds: held longer, they outlived young-generation
   * GCs, were promoted, and grew the old heap (and RSS) by tens of megabytes.
   */
  flushRows?: number
  /** the server's one scrubber; a private one is made when absent */
  scrubber?: SecretScrubber
  /** moves bodies over the inline cap to the capture store before their batch is written (--capture-store) */
  offload?: CaptureOffload
}

const MAX_TEXT = 256
const MAX_ERROR = 2000

interface Batch {
  rows: unknown[][]
  usage: UsageDelta[]
  /** the batch's bodies on their way to the capture store: its rows are written once this settles */
  uploads?: Promise<void>
}

export class AuditWriter {
  readonly #opts: Required<Pick<AuditWriterOptions, 'flushMs' | 'maxBuffered' | 'batchRows' | 'flushRows'>> & AuditWriterOptions
  readonly #ring: Array<RequestRecord | undefined>
  #head = 0
  #count = 0
  #dropped = 0
  /** taken from the ring: being written, or kept for the next try after a failed write */
  #batch: Batch | null = null
  #writing: Promise<number> | null = null
  #timer: NodeJS.Timeout | null = null
  #soon: NodeJS.Immediate | null = null
  #closed = false
  /** each warning at most once a minute: a store that stays locked or a writer that stays behind would flood the log */
  readonly #warnFailed = onceAMinute()
  readonly #warnDropped = onceAMinute()
  readonly #sink: AuditSink
  readonly #scrubber: SecretScrubber

  constructor(opts: AuditWriterOptions) {
    this.#opts = { flushMs: 300, maxBuffered: 50_000, batchRows: 2000, flushRows: 64, ...opts }
    this.#ring = new Array(this.#opts.maxBuffered)
    const events: AuditSinkEvents = {
      flushed: (ok, seconds, error) => {
        this.#opts.metrics?.auditFlushed(ok, seconds)
        if (ok) return
        if (this.#warnFailed()) this.#opts.logger.warn({ err: error ?? 'unknown', buffered: this.size }, 'audit write failed; rows stay buffered and are retried')
      },
      dropped: (rows) => {
        this.#dropped += rows
        this.#opts.metrics?.auditDropped(rows)
        if (this.#warnDropped()) {
          this.#opts.logger.warn({ event: 'audit', dropped: rows, dropped_total: this.#dropped }, 'audit rows dropped: the store writer is behind, or the store refuses writes (see proxy_audit_dropped_total)')
        }
      },
    }
    this.#sink = (opts.sink ?? ((e) => simpleStoreWriter(opts.store, e)))(events)
    this.#scrubber = opts.scrubber ?? new SecretScrubber(opts.config)
    this.#timer = setInterval(() => void this.#writeNext(), this.#opts.flushMs)
    this.#timer.unref()
  }

  /** records waiting to be written: here, in a refused batch, and in the sink */
  get size(): number {
    return this.#count + (this.#batch?.rows.length ?? 0) + this.#sink.buffered
  }

  /** records dropped since start because the buffer was full */
  get dropped(): number {
    return this.#dropped
  }

  /** O(1), allocation-free: the record itself is buffered and turned into a row when its batch is made. */
  add(record: RequestRecord): void {
    if (this.#closed) return
    const cap = this.#ring.length
    if (this.#count === cap) {
      this.#ring[this.#head] = undefined
      this.#head = (this.#head + 1) % cap
      this.#count--
      this.#dropped++
      this.#opts.metrics?.auditDropped(1)
    }
    this.#ring[(this.#head + this.#count) % cap] = record
    this.#count++
    if (this.#count === this.#opts.flushRows) this.#flushSoon()
  }

  /**
   * Hands the sink one batch (the one it refused last time, else up to `batchRows` buffered records) and
   * has it commit what it holds. Resolves to how many rows were committed (0 when the store refused them;
   * they stay buffered). While a batch is out, waits for it first, so what was buffered when flush() was
   * called is committed when it resolves (up to `batchRows`).
   */
  async flush(): Promise<number> {
    const handed = await (this.#writing ? this.#writing.then(() => this.#writeNext()) : this.#writeNext())
    return handed + (await this.#sink.flush())
  }

  #writeNext(): Promise<number> {
    if (this.#writing) return this.#writing
    if (!this.#batch) {
      if (this.#count === 0) return Promise.resolve(0)
      this.#batch = this.#take()
    }
    const batch = this.#batch
    const write = () => this.#sink.write(batch.rows, batch.usage)
    this.#writing = (batch.uploads ? batch.uploads.then(write) : write()).then(
      (committed) => {
        this.#writing = null
        this.#batch = null
        // Once per batch: a store that refuses writes is retried by the interval, not on every request.
        if (this.#count >= this.#opts.flushRows) this.#flushSoon()
        return committed
      },
      () => {
        // refused (the sink has told why): kept for the next try
        this.#writing = null
        return 0
      },
    )
    return this.#writing
  }

  /**
   * Commits statements compiled elsewhere (key health, quota usage, retention) through the same sink, so the
   * server's other write-behind state leaves the event loop too; see AuditSink.apply.
   */
  apply(writes: WriteStatement[]): Promise<number> {
    return this.#sink.apply(writes)
  }

  /** Stops the timer, writes everything still buffered (call after the HTTP server has drained), closes the sink. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    if (this.#soon) clearImmediate(this.#soon)
    this.#soon = null
    for (let tries = 0; (this.#count > 0 || this.#batch) && tries < 200; tries++) {
      await this.#writeNext()
      if (this.#batch) await new Promise((r) => setTimeout(r, 10))
    }
    const lost = this.#count + (this.#batch?.rows.length ?? 0) + (await this.#sink.close())
    if (lost > 0) this.#opts.logger.error({ lost }, 'audit rows could not be written before shutdown')
  }

  #flushSoon(): void {
    if (this.#soon || this.#closed) return
    this.#soon = setImmediate(() => {
      this.#soon = null
      void this.#writeNext()
    })
    this.#soon.unref()
  }

  /** Turns up to `batchRows` records into rows and usage deltas and releases them from the ring. */
  #take(): Batch {
    const n = Math.min(this.#count, this.#opts.batchRows)
    const snapshot = this.#opts.config()
    const rows: unknown[][] = new Array(n)
    const usage = new Map<string, UsageDelta>()
    const cap = this.#ring.length
    const offload = this.#opts.offload
    let uploads: CaptureUpload[] | undefined
    offload?.begin()
    for (let i = 0; i < n; i++) {
      const slot = (this.#head + i) % cap
      const record = this.#ring[slot]!
      this.#ring[slot] = undefined
      const row = toAuditRow(record, snapshot, this.#scrubber)
      const moved = offload?.take(row)
      const values = (rows[i] = auditRowValues(row))
      if (moved) for (const m of moved) (uploads ??= []).push({ ...m, values })
      addUsage(usage, record, row, snapshot)
    }
    this.#head = (this.#head + n) % cap
    this.#count -= n
    return { rows, usage: [...usage.values()], ...(uploads && offload ? { uploads: offload.store(uploads) } : {}) }
  }
}

/** The row for one request. Costs use the snapshot's provider settings at flush time. */
export function toAuditRow(r: RequestRecord, snapshot: ConfigSnapshot, scrubber?: SecretScrubber): NewAuditRow {
  const endedAt = r.endedAt ?? Date.now()
  const usage = r.usage
  const cost = requestCost(r, snapshot)
  // a hit: what its answer cost when it was made, at today's prices
  const saved = r.cacheSaved ? requestCost({ usage: r.cacheSaved, provider: r.provider, upstreamModel: r.upstreamModel }, snapshot) : null
  return {
    request_id: r.requestId,
    ts: new Date(endedAt - r.ms).toISOString(),
    method: r.method,
    path: clip(r.path, MAX_TEXT),
    client: r.client,
    ip: r.ip,
    model: r.model === null ? null : clip(r.model, MAX_TEXT),
    provider: r.provider,
    upstream_model: r.upstreamModel,
    key_label: r.key,
    stream: r.stream ? 1 : 0,
    status: r.status,
    latency_ms: r.ms,
    upstream_ms: upstreamMs(r),
    ttft_ms: r.ttftMs ?? null,
    prompt_tokens: tokenCount(usage?.prompt_tokens),
    completion_tokens: tokenCount(usage?.completion_tokens),
    total_tokens: tokenCount(usage?.total_tokens),
    cost_usd: cost,
    attempts: r.attempts.length,
    fallback: fallbackKind(r),
    error_code: r.error?.code ?? null,
    error_message: r.error === null ? null : clip(scrubber ? scrubber.scrub(r.error.message) : r.error.message, MAX_ERROR),
    request_body: r.capture?.requestText(scrubber) ?? null,
    response_body: r.capture?.responseText(scrubber) ?? null,
    cache: r.cache ?? null,
    saved_usd: saved,
    trace_id: r.traceId ?? null,
    request_body_key: null,
    request_body_bytes: null,
    response_body_key: null,
    response_body_bytes: null,
    capture_dropped: null,
  }
}

/**
 * An upstream's token count as an integer column holds it: a count that is fractional, negative, huge
 * or not a number (an upstream's bug) would otherwise be refused by PostgreSQL's bigint and fail its
 * whole batch on every retry.
 */
function tokenCount(n: unknown): number | null {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return null
  return Number.isSafeInteger(n) ? n : Math.min(Math.round(n), Number.MAX_SAFE_INTEGER)
}

/** What the request cost in USD at the serving provider's prices; null when nothing was served or counted. */
export function requestCost(r: Pick<RequestRecord, 'usage' | 'provider' | 'upstreamModel'>, snapshot: ConfigSnapshot): number | null {
  const usage = r.usage
  return usage && r.provider ? costUsd(priceIn(snapshot, r.provider, r.upstreamModel)?.price ?? null, usage) : null
}

/**
 * Time spent waiting on upstreams: every attempt, and for a stream also the time from the hand-over to
 * its end (the gateway's attempt ends at the first upstream chunk). Null when no upstream was called.
 */
export function upstreamMs(r: RequestRecord): number | null {
  const n = r.attempts.length
  if (n === 0) return null
  let sum = 0
  for (let i = 0; i < n; i++) sum += r.attempts[i]!.ms
  if (r.stream && r.servedMs !== null && r.servedMs !== undefined) sum += Math.max(0, r.ms - r.servedMs)
  return Math.round(Math.min(sum, r.ms) * 100) / 100
}

/**
 * Usage counts model calls (POST /v1/…, not model listings) from an authenticated client that named a
 * routed model or reached an upstream; a typo'd model name is in the audit trail but not in usage.
 */
function addUsage(usage: Map<string, UsageDelta>, r: RequestRecord, row: NewAuditRow, snapshot: ConfigSnapshot): void {
  if (r.method !== 'POST' || !r.client || !r.model || (r.attempts.length === 0 && !findRoute(snapshot, r.model))) return
  const day = row.ts.slice(0, 10)
  const key = `${day}\u0000${r.client}\u0000${row.model}`
  let u = usage.get(key)
  if (!u) {
    u = { day, client: r.client, model: row.model!, requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0, cache_hits: 0, saved_usd: 0 }
    usage.set(key, u)
  }
  u.requests++
  if (r.status >= 400) u.errors++
  u.prompt_tokens += row.prompt_tokens ?? 0
  u.completion_tokens += row.completion_tokens ?? 0
  u.cost_usd += row.cost_usd ?? 0
  if (r.cache === 'hit') u.cache_hits++
  u.saved_usd += row.saved_usd ?? 0
}
