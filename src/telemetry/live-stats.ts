/**
 * Live figures for `/admin/v1/stats` and `proxy top`: rolling in-memory windows of one-second buckets,
 * fed by telemetry when a request finishes. Recording is O(1) and allocation-free once a provider or
 * key has been seen: a few typed-array increments, one latency histogram bucket, and a copy of a few
 * fields into a preallocated ring entry for the recent-requests list. No timers: a bucket is cleared
 * when its second comes round again. Reading (a few times a second at most) does the summing.
 *
 * Latencies go into log-scale histograms (four buckets per doubling, so percentiles are within about
 * 10%), per second, so the last minute's p50/p95/p99 are exact over the window and cheap to update.
 * Only API traffic (/v1/…) is counted: polling the stats must not show up in them.
 */
import { clip } from '../core/clip.js'
import type { RequestRecord } from './request-record.js'

/** buckets per doubling of latency */
const SUB = 4
/** the first bucket starts at 2^-MIN_EXP ms (a quarter millisecond) */
const MIN_EXP = 2
/** 2^-2 ms … 2^20 ms (about 17 minutes); slower requests land in the last bucket */
const BUCKETS = (MIN_EXP + 20) * SUB

export function latencyBucket(ms: number): number {
  if (!(ms > 0)) return 0
  const i = Math.floor((Math.log2(ms) + MIN_EXP) * SUB)
  return i < 0 ? 0 : i >= BUCKETS ? BUCKETS - 1 : i
}

/** the geometric middle of a bucket, which is what a percentile in it reports */
export function bucketMs(i: number): number {
  return 2 ** ((i + 0.5) / SUB - MIN_EXP)
}

export interface Percentiles {
  p50: number
  p95: number
  p99: number
}

/** Per-second counters over the last `capacity` seconds, with a latency histogram per second. */
class SecondRing {
  readonly #secs: Int32Array
  readonly requests: Uint32Array
  readonly errors: Uint32Array
  readonly rateLimited: Uint32Array
  readonly tokens: Float64Array
  readonly latencySum: Float64Array
  readonly #hist: Uint32Array | null

  constructor(
    readonly capacity: number,
    withHistogram: boolean,
  ) {
    this.#secs = new Int32Array(capacity).fill(-1)
    this.requests = new Uint32Array(capacity)
    this.errors = new Uint32Array(capacity)
    this.rateLimited = new Uint32Array(capacity)
    this.tokens = new Float64Array(capacity)
    this.latencySum = new Float64Array(capacity)
    this.#hist = withHistogram ? new Uint32Array(capacity * BUCKETS) : null
  }

  /** the slot of this second, cleared when it last held an older second */
  slot(sec: number): number {
    const i = sec % this.capacity
    if (this.#secs[i] !== sec) {
      this.#secs[i] = sec
      this.requests[i] = 0
      this.errors[i] = 0
      this.rateLimited[i] = 0
      this.tokens[i] = 0
      this.latencySum[i] = 0
      this.#hist?.fill(0, i * BUCKETS, (i + 1) * BUCKETS)
    }
    return i
  }

  record(sec: number, ms: number, error: boolean, tokens: number, rateLimited: boolean): void {
    const i = this.slot(sec)
    this.requests[i]!++
    if (error) this.errors[i]!++
    if (rateLimited) this.rateLimited[i]!++
    this.tokens[i]! += tokens
    this.latencySum[i]! += ms
    if (this.#hist) this.#hist[i * BUCKETS + latencyBucket(ms)]!++
  }

  /** the slot holding `sec`, or -1 when that second saw nothing (or fell out of the ring) */
  find(sec: number): number {
    const i = sec % this.capacity
    return sec >= 0 && this.#secs[i] === sec ? i : -1
  }

  /** sums over the seconds [fromSec, toSec] */
  sum(fromSec: number, toSec: number): { requests: number; errors: number; rateLimited: number; tokens: number; latencySum: number } {
    const out = { requests: 0, errors: 0, rateLimited: 0, tokens: 0, latencySum: 0 }
    for (let s = Math.max(fromSec, toSec - this.capacity + 1); s <= toSec; s++) {
      const i = this.find(s)
      if (i < 0) continue
      out.requests += this.requests[i]!
      out.errors += this.errors[i]!
      out.rateLimited += this.rateLimited[i]!
      out.tokens += this.tokens[i]!
      out.latencySum += this.latencySum[i]!
    }
    return out
  }

  percentiles(fromSec: number, toSec: number): Percentiles | null {
    const hist = this.#hist
    if (!hist) return null
    const merged = new Uint32Array(BUCKETS)
    let total = 0
    for (let s = Math.max(fromSec, toSec - this.capacity + 1); s <= toSec; s++) {
      const i = this.find(s)
      if (i < 0 || this.requests[i] === 0) continue
      for (let b = 0, base = i * BUCKETS; b < BUCKETS; b++) merged[b]! += hist[base + b]!
      total += this.requests[i]!
    }
    if (total === 0) return null
    const at = (q: number) => {
      const rank = Math.ceil(q * total)
      let seen = 0
      for (let b = 0; b < BUCKETS; b++) {
        seen += merged[b]!
        if (seen >= rank) return round(bucketMs(b))
      }
      return round(bucketMs(BUCKETS - 1))
    }
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99) }
  }
}

/** One finished request, as the recent-requests list shows it. */
export interface RecentRequest {
  id: string
  /** when it ended (epoch ms) */
  at: number
  client: string | null
  /** the client's team (null: none) */
  team: string | null
  model: string | null
  provider: string | null
  key: string | null
  status: number
  ms: number
  tokens: number | null
  stream: boolean
  /** the error code when it failed (a 4xx/5xx, or a stream that ended with an error event) */
  error: string | null
}

interface KeyEntry {
  label: string
  ring: SecondRing
}

interface ProviderEntry {
  name: string
  ring: SecondRing
  keys: Map<string, KeyEntry>
}

export interface LiveKeyFigures {
  label: string
  requests: number
  errors: number
  latencyMsAvg: number | null
}

export interface LiveProviderFigures {
  name: string
  /** upstream attempts over the window (a request that fell back counts once per provider it tried) */
  requests: number
  errors: number
  latencyMs: Percentiles | null
  keys: LiveKeyFigures[]
}

export interface LiveFigures {
  /** epoch ms of this report */
  at: number
  startedAt: number
  uptimeS: number
  /** seconds the `window` figures and the series cover */
  windowS: number
  /** since the server started */
  totals: { requests: number; errors: number; rateLimited: number; tokens: number }
  window: {
    requests: number
    errors: number
    /** errors / requests, 0..1 */
    errorRate: number
    rateLimited: number
    tokens: number
    requestsPerS: number
    errorsPerS: number
    tokensPerS: number
    latencyMs: Percentiles | null
  }
  /** per complete second, oldest first, the last entry being the second before `at` */
  series: { requests: number[]; errors: number[]; tokens: number[]; rateLimited: number[] }
  activeStreams: number
  providers: LiveProviderFigures[]
  /** newest first */
  recent: RecentRequest[]
}

export interface LiveStatsOptions {
  /** seconds of per-second history kept (60…3600); default 300 */
  historyS?: number
  /** how many recent requests are kept; default 50 */
  recent?: number
  now?: () => number
}

/** The per-provider and per-key rings keep one minute: that is all `proxy top` shows of them. */
const PER_TARGET_S = 60
const RATE_LIMIT_CODES = new Set(['rate_limit_exceeded', 'insufficient_quota'])

export class LiveStats {
  readonly startedAt: number
  readonly #now: () => number
  readonly #ring: SecondRing
  readonly #providers = new Map<string, ProviderEntry>()
  readonly #recent: RecentRequest[]
  #recentHead = 0
  #recentCount = 0
  #streams = 0
  readonly #totals = { requests: 0, errors: 0, rateLimited: 0, tokens: 0 }

  constructor(opts: LiveStatsOptions = {}) {
    this.#now = opts.now ?? Date.now
    this.startedAt = this.#now()
    this.#ring = new SecondRing(Math.min(3600, Math.max(60, Math.floor(opts.historyS ?? 300))), true)
    const n = Math.max(1, opts.recent ?? 50)
    this.#recent = Array.from({ length: n }, () => ({ id: '', at: 0, client: null, team: null, model: null, provider: null, key: null, status: 0, ms: 0, tokens: null, stream: false, error: null }))
  }

  get activeStreams(): number {
    return this.#streams
  }

  streamOpened(): void {
    this.#streams++
  }

  streamClosed(): void {
    if (this.#streams > 0) this.#streams--
  }

  /** One finished request. Only API requests (/v1/…) count. */
  requestDone(r: RequestRecord): void {
    if (!r.path.startsWith('/v1/')) return
    const at = r.endedAt ?? this.#now()
    const sec = Math.floor(at / 1000)
    // A client that went away (499) is not the proxy's error; a stream that ended with an error event is.
    const error = r.status !== 499 && (r.status >= 400 || r.error !== null)
    const rateLimited = r.status === 429 && r.error !== null && r.error.code !== null && RATE_LIMIT_CODES.has(r.error.code)
    const tokens = r.usage ? r.usage.total_tokens : 0
    this.#ring.record(sec, r.ms, error, tokens, rateLimited)
    const t = this.#totals
    t.requests++
    if (error) t.errors++
    if (rateLimited) t.rateLimited++
    t.tokens += tokens
    this.#recordAttempts(r, sec)
    this.#remember(r, at, error)
  }

  /** Each upstream attempt, booked to its provider and key; a served stream's attempt lasts until the stream ended. */
  #recordAttempts(r: RequestRecord, sec: number): void {
    const n = r.attempts.length
    for (let i = 0; i < n; i++) {
      const a = r.attempts[i]!
      let ms = a.ms
      if (i === n - 1 && !a.error && r.stream && typeof r.servedMs === 'number') ms += Math.max(0, r.ms - r.servedMs)
      const failed = !!a.error || (i === n - 1 && r.error !== null && r.status !== 499)
      const provider = this.#provider(a.provider)
      provider.ring.record(sec, ms, failed, 0, false)
      if (a.key !== null) this.#key(provider, a.key).ring.record(sec, ms, failed, 0, false)
    }
  }

  #provider(name: string): ProviderEntry {
    let p = this.#providers.get(name)
    if (!p) this.#providers.set(name, (p = { name, ring: new SecondRing(PER_TARGET_S, true), keys: new Map() }))
    return p
  }

  #key(provider: ProviderEntry, label: string): KeyEntry {
    let k = provider.keys.get(label)
    if (!k) provider.keys.set(label, (k = { label, ring: new SecondRing(PER_TARGET_S, false) }))
    return k
  }

  #remember(r: RequestRecord, at: number, error: boolean): void {
    const cap = this.#recent.length
    const e = this.#recent[(this.#recentHead + this.#recentCount) % cap]!
    if (this.#recentCount === cap) this.#recentHead = (this.#recentHead + 1) % cap
    else this.#recentCount++
    e.id = r.requestId
    e.at = at
    e.client = r.client
    e.team = r.team ?? null
    e.model = r.model === null ? null : clip(r.model)
    e.provider = r.provider
    e.key = r.key
    e.status = r.status
    e.ms = r.ms
    e.tokens = r.usage ? r.usage.total_tokens : null
    e.stream = r.stream
    e.error = error ? (r.error?.code ?? r.error?.type ?? `http_${r.status}`) : null
  }

  /** The figures over the last `windowS` seconds (at most the history kept), plus totals since start. */
  report(windowS = 60, now = this.#now()): LiveFigures {
    const w = Math.min(this.#ring.capacity, Math.max(1, Math.floor(windowS)))
    const nowSec = Math.floor(now / 1000)
    const from = nowSec - w + 1
    const sums = this.#ring.sum(from, nowSec)
    // Rates over the time the window actually covers: a server up 5 s divides by 5, not 60.
    const covered = Math.max(1, Math.min(w, (now - this.startedAt) / 1000))
    const series = { requests: new Array<number>(w), errors: new Array<number>(w), tokens: new Array<number>(w), rateLimited: new Array<number>(w) }
    for (let k = 0; k < w; k++) {
      const i = this.#ring.find(nowSec - w + k)
      series.requests[k] = i < 0 ? 0 : this.#ring.requests[i]!
      series.errors[k] = i < 0 ? 0 : this.#ring.errors[i]!
      series.tokens[k] = i < 0 ? 0 : this.#ring.tokens[i]!
      series.rateLimited[k] = i < 0 ? 0 : this.#ring.rateLimited[i]!
    }
    const perTargetFrom = nowSec - Math.min(w, PER_TARGET_S) + 1
    const providers: LiveProviderFigures[] = []
    for (const p of this.#providers.values()) {
      const s = p.ring.sum(perTargetFrom, nowSec)
      const keys: LiveKeyFigures[] = []
      for (const k of p.keys.values()) {
        const ks = k.ring.sum(perTargetFrom, nowSec)
        keys.push({ label: k.label, requests: ks.requests, errors: ks.errors, latencyMsAvg: ks.requests ? round(ks.latencySum / ks.requests) : null })
      }
      providers.push({ name: p.name, requests: s.requests, errors: s.errors, latencyMs: p.ring.percentiles(perTargetFrom, nowSec), keys })
    }
    const recent: RecentRequest[] = []
    const cap = this.#recent.length
    for (let n = this.#recentCount - 1; n >= 0; n--) recent.push({ ...this.#recent[(this.#recentHead + n) % cap]! })
    return {
      at: now,
      startedAt: this.startedAt,
      uptimeS: Math.max(0, Math.floor((now - this.startedAt) / 1000)),
      windowS: w,
      totals: { ...this.#totals },
      window: {
        requests: sums.requests,
        errors: sums.errors,
        errorRate: sums.requests ? sums.errors / sums.requests : 0,
        rateLimited: sums.rateLimited,
        tokens: sums.tokens,
        requestsPerS: round(sums.requests / covered),
        errorsPerS: round(sums.errors / covered),
        tokensPerS: round(sums.tokens / covered),
        latencyMs: this.#ring.percentiles(from, nowSec),
      },
      series,
      activeStreams: this.#streams,
      providers,
      recent,
    }
  }
}

function round(n: number): number {
  return n >= 100 ? Math.round(n) : Math.round(n * 100) / 100
}
