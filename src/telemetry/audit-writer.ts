/**
 * The audit trail and usage counters, written off the request path. `add()` only puts the finished
 * request record in a bounded ring buffer; every `flushMs` one synchronous transaction writes the
 * buffered rows and the summed usage deltas. A crash loses at most one interval; `close()` writes the
 * rest, so a clean shutdown loses nothing. When the store refuses writes (locked, disk full) rows stay
 * buffered and are retried; past `maxBuffered` the oldest are dropped and counted.
 */
import type { Store } from '../store/db.js'
import { costUsd, priceFor } from '../store/prices.js'
import { auditBatchWriter, type AuditBatchWriter, type NewAuditRow } from '../store/repos/audit.js'
import type { UsageDelta } from '../store/repos/usage.js'
import type { ConfigSnapshot } from '../store/snapshot.js'
import type { Logger } from './logger.js'
import type { ProxyMetrics } from './metrics.js'
import { SecretScrubber } from './redact.js'
import { fallbackKind } from './metrics.js'
import type { RequestRecord } from './request-record.js'

export interface AuditWriterOptions {
  store: Store
  config: () => ConfigSnapshot
  logger: Logger
  metrics?: ProxyMetrics
  /** default 300 ms here; the server uses PROXY_AUDIT_FLUSH_MS (100 ms) */
  flushMs?: number
  /** rows kept while the store is not accepting writes; default 50 000 */
  maxBuffered?: number
  /** rows per transaction, so one flush never holds the event loop for long; default 2 000 */
  batchRows?: number
  /**
   * a flush starts as soon as this many rows wait, without waiting for the interval; default 256. Under
   * load rows then leave memory within tens of milliseconds: held longer, they outlived young-generation
   * GCs, were promoted, and grew the old heap (and RSS) by tens of megabytes.
   */
  flushRows?: number
  /** the server's one scrubber; a private one is made when absent */
  scrubber?: SecretScrubber
}

const MAX_TEXT = 256
const MAX_ERROR = 2000

export class AuditWriter {
  readonly #opts: Required<Pick<AuditWriterOptions, 'flushMs' | 'maxBuffered' | 'batchRows' | 'flushRows'>> & AuditWriterOptions
  readonly #ring: Array<RequestRecord | undefined>
  #head = 0
  #count = 0
  #dropped = 0
  #timer: NodeJS.Timeout | null = null
  #soon: NodeJS.Immediate | null = null
  #writer: AuditBatchWriter | null = null
  #closed = false
  #lastErrorLog = 0
  readonly #scrubber: SecretScrubber

  constructor(opts: AuditWriterOptions) {
    this.#opts = { flushMs: 300, maxBuffered: 50_000, batchRows: 2000, flushRows: 64, ...opts }
    this.#ring = new Array(this.#opts.maxBuffered)
    this.#scrubber = opts.scrubber ?? new SecretScrubber(opts.config)
    this.#timer = setInterval(() => this.flush(), this.#opts.flushMs)
    this.#timer.unref()
  }

  /** rows waiting for the next write */
  get size(): number {
    return this.#count
  }

  /** rows dropped since start because the buffer was full */
  get dropped(): number {
    return this.#dropped
  }

  /** O(1), allocation-free: the record itself is buffered and turned into a row at flush time. */
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
    // Once per batch (a store that refuses writes is retried by the interval, not on every request).
    if (this.#count === this.#opts.flushRows && !this.#soon) {
      this.#soon = setImmediate(() => {
        this.#soon = null
        this.flush()
      })
      this.#soon.unref()
    }
  }

  /**
   * Writes up to `batchRows` buffered rows in one transaction; returns how many were written. Rows leave
   * the buffer only once committed.
   */
  flush(): number {
    if (this.#count === 0) return 0
    const { store } = this.#opts
    // Another (async) transaction is open on the shared connection (a config reload): try next tick.
    if (!store.sqlite.open || store.sqlite.inTransaction) return 0
    const n = Math.min(this.#count, this.#opts.batchRows)
    const started = performance.now()
    try {
      const snapshot = this.#opts.config()
      const rows: NewAuditRow[] = new Array(n)
      const usage = new Map<string, UsageDelta>()
      const cap = this.#ring.length
      for (let i = 0; i < n; i++) {
        const record = this.#ring[(this.#head + i) % cap]!
        const row = toAuditRow(record, snapshot, this.#scrubber)
        rows[i] = row
        addUsage(usage, record, row, snapshot)
      }
      this.#writer ??= auditBatchWriter(store.sqlite)
      this.#writer.write(rows, usage.values())
      for (let i = 0; i < n; i++) this.#ring[(this.#head + i) % cap] = undefined
      this.#head = (this.#head + n) % cap
      this.#count -= n
      this.#opts.metrics?.auditFlushed(true, (performance.now() - started) / 1000)
      return n
    } catch (err) {
      this.#opts.metrics?.auditFlushed(false, 0)
      const now = Date.now()
      if (now - this.#lastErrorLog > 60_000) {
        this.#lastErrorLog = now
        this.#opts.logger.warn({ err: err instanceof Error ? err.message : String(err), buffered: this.#count }, 'audit write failed; rows stay buffered and are retried')
      }
      return 0
    }
  }

  /** Stops the timer and writes everything still buffered (call after the HTTP server has drained). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    if (this.#soon) clearImmediate(this.#soon)
    this.#soon = null
    for (let tries = 0; this.#count > 0 && tries < 200; tries++) {
      if (this.flush() === 0) await new Promise((r) => setTimeout(r, 10))
    }
    if (this.#count > 0) this.#opts.logger.error({ lost: this.#count }, 'audit rows could not be written before shutdown')
  }
}

/** The row for one request. Costs use the snapshot's provider settings at flush time. */
export function toAuditRow(r: RequestRecord, snapshot: ConfigSnapshot, scrubber?: SecretScrubber): NewAuditRow {
  const endedAt = r.endedAt ?? Date.now()
  const usage = r.usage
  const cost = usage && r.provider ? costUsd(priceFor(r.upstreamModel, snapshot.providers.get(r.provider)?.settings), usage.prompt_tokens, usage.completion_tokens) : null
  return {
    request_id: r.requestId,
    ts: new Date(endedAt - r.ms).toISOString(),
    method: r.method,
    path: clip(r.path, MAX_TEXT)!,
    client: r.client,
    ip: r.ip,
    model: clip(r.model, MAX_TEXT),
    provider: r.provider,
    upstream_model: r.upstreamModel,
    key_label: r.key,
    stream: r.stream ? 1 : 0,
    status: r.status,
    latency_ms: r.ms,
    upstream_ms: upstreamMs(r),
    ttft_ms: r.ttftMs ?? null,
    prompt_tokens: usage?.prompt_tokens ?? null,
    completion_tokens: usage?.completion_tokens ?? null,
    total_tokens: usage?.total_tokens ?? null,
    cost_usd: cost,
    attempts: r.attempts.length,
    fallback: fallbackKind(r),
    error_code: r.error?.code ?? null,
    error_message: clip(scrubber ? scrubber.scrub(r.error?.message ?? null) : (r.error?.message ?? null), MAX_ERROR),
    request_body: r.capture?.requestText() ?? null,
    response_body: r.capture?.responseText() ?? null,
  }
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
  if (r.method !== 'POST' || !r.client || !r.model || (r.attempts.length === 0 && !snapshot.routes.has(r.model))) return
  const day = row.ts.slice(0, 10)
  const key = `${day}\u0000${r.client}\u0000${row.model}`
  let u = usage.get(key)
  if (!u) {
    u = { day, client: r.client, model: row.model!, requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 }
    usage.set(key, u)
  }
  u.requests++
  if (r.status >= 400) u.errors++
  u.prompt_tokens += row.prompt_tokens ?? 0
  u.completion_tokens += row.completion_tokens ?? 0
  u.cost_usd += row.cost_usd ?? 0
}

function clip(text: string | null, max: number): string | null {
  return text !== null && text.length > max ? text.slice(0, max) + '…' : text
}
