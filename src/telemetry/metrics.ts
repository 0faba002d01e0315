/**
 * Prometheus metrics on a Registry the composition root creates and passes in (never the global one),
 * so several servers in one process (tests) each count their own requests.
 *
 * Recording is a handful of map lookups and counter increments per request. Label values come from the
 * configuration snapshot only (see labels.ts). Buckets are set for LLM traffic: overhead in
 * sub-milliseconds, first tokens in tenths of a second to seconds, whole answers up to minutes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from './prom.js'
import type { ConfigSnapshot } from '../core/config.js'
import { hasHealth, normalizeCircuitState, readHealth, type GatewayEventSink, type HealthSource } from './gateway-health.js'
import { LabelSet, routeLabel, statusLabel, wordLabel } from './labels.js'
import { SeriesCounter, SeriesHistogram, type CounterSeries, type HistogramSeries } from './series.js'
import type { RequestRecord } from './request-record.js'

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300]
export const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 60]
export const OVERHEAD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
const FLUSH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5]

const CIRCUIT_VALUE = { closed: 0, half_open: 1, open: 2 } as const
const SERIES_CAP = 10_000

interface RequestSeries {
  requests: CounterSeries
  duration: HistogramSeries
  upstream: HistogramSeries
  overhead: HistogramSeries
  ttft: HistogramSeries
  /** prompt and completion token counters by client label */
  tokens: Map<string, { in: CounterSeries; out: CounterSeries }>
}

export interface ProxyMetrics {
  readonly registry: Registry
  /** one finished request; `upstreamMs` is the time spent waiting on upstreams (null: none was called) */
  requestDone(record: RequestRecord, upstreamMs: number | null): void
  streamOpened(): void
  streamClosed(): void
  /** a request refused by a rate limit or quota; `scope` is a short word such as client, ip, global, tpm */
  rateLimited(scope: string): void
  auditDropped(rows: number): void
  /** captured bodies dropped instead of going to the capture store, by reason (capture-offload.ts) */
  captureDropped(reason: string, bodies: number): void
  auditFlushed(ok: boolean, seconds: number): void
  configReloaded(ok: boolean): void
  /** reads circuit and key health from the gateway at scrape time, when it has `health()` */
  watchGateway(gateway: unknown): void
  /** reports the audit buffer's size at scrape time */
  watchAuditBuffer(size: () => number): void
  /** reports client connections (open, the cap, refused at the cap since the start) at scrape time */
  watchConnections(figures: () => { open: number; max: number; refused: number }): void
  /** reports the bytes the response cache holds in this process at scrape time */
  watchCache(bytes: () => number): void
  /** pass as the gateway's events sink: counts circuit transitions and key health changes */
  readonly gatewayEvents: GatewayEventSink
  /** proxy_budget_used_ratio: the share of a money budget spent in its current period */
  readonly budgets: BudgetGauge
}

export interface BudgetGauge {
  used(level: string, name: string, period: string, ratio: number): void
}

export interface MetricsOptions {
  config: () => ConfigSnapshot
  /** process and Node.js runtime metrics (CPU, memory, event loop lag, GC); default true */
  processMetrics?: boolean
  prefix?: string
}

export function createMetrics(registry: Registry, opts: MetricsOptions): ProxyMetrics {
  const p = opts.prefix ?? 'proxy_'
  const registers = [registry]
  const labels = new LabelSet(opts.config)
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry })

  const requests = new SeriesCounter({ name: `${p}requests_total`, help: 'Requests answered, by route, model, provider and HTTP status.', labelNames: ['route', 'model', 'provider', 'status'] as const, registers })
  const duration = new SeriesHistogram({ name: `${p}request_duration_seconds`, help: 'Total request latency, until the last byte of the answer (streams: until the stream ended).', labelNames: ['route', 'model', 'provider', 'stream'] as const, buckets: LATENCY_BUCKETS, registers })
  const upstream = new SeriesHistogram({ name: `${p}upstream_duration_seconds`, help: 'Time spent waiting on upstreams, all attempts included.', labelNames: ['model', 'provider'] as const, buckets: LATENCY_BUCKETS, registers })
  const overhead = new SeriesHistogram({ name: `${p}overhead_seconds`, help: "The proxy's own time: total latency minus upstream time (includes backoff between attempts).", labelNames: ['route'] as const, buckets: OVERHEAD_BUCKETS, registers })
  const ttft = new SeriesHistogram({ name: `${p}time_to_first_token_seconds`, help: 'Streams: time from the request to the first chunk written to the client.', labelNames: ['model', 'provider'] as const, buckets: TTFT_BUCKETS, registers })
  const tokens = new SeriesCounter({ name: `${p}tokens_total`, help: 'Tokens reported by upstreams; direction is in (prompt) or out (completion).', labelNames: ['direction', 'model', 'provider', 'client'] as const, registers })
  const attempts = new SeriesCounter({ name: `${p}upstream_attempts_total`, help: 'Upstream attempts by provider and outcome (ok, or the HTTP status the attempt failed with).', labelNames: ['provider', 'outcome'] as const, registers })
  const retries = new Counter({ name: `${p}retries_total`, help: 'Attempts beyond the first, by requested model.', labelNames: ['model'] as const, registers })
  const fallbacks = new Counter({ name: `${p}fallbacks_total`, help: 'Requests whose last attempt went to another key (kind=key), provider/route target (kind=provider) or the global fallback route (kind=global).', labelNames: ['model', 'kind'] as const, registers })
  const rateLimited = new Counter({ name: `${p}rate_limited_total`, help: 'Requests refused by a rate limit or quota, by scope.', labelNames: ['scope'] as const, registers })
  const budgetUsed = new Gauge({ name: `${p}budget_used_ratio`, help: 'Share of a money budget spent in its current UTC period (1 = all of it), by level (global, client, team, provider), name and period (day, month).', labelNames: ['level', 'name', 'period'] as const, registers })
  const activeStreams = new Gauge({ name: `${p}active_streams`, help: 'SSE responses open right now.', registers })
  const circuitTransitions = new Counter({ name: `${p}circuit_transitions_total`, help: 'Circuit breaker state changes.', labelNames: ['provider', 'key', 'to'] as const, registers })
  const keyHealthChanges = new Counter({ name: `${p}key_health_changes_total`, help: 'Upstream key health changes, by the condition entered (ok, cooling, invalid).', labelNames: ['provider', 'key', 'to'] as const, registers })
  const auditDropped = new Counter({ name: `${p}audit_dropped_total`, help: 'Audit rows dropped because the buffer was full (the store was not accepting writes).', registers })
  const captureDropped = new Counter({ name: `${p}capture_dropped_total`, help: 'Captured bodies over the inline cap that were dropped instead of going to the capture store (the audit row is kept), by reason: error, timeout, unavailable (the store had just failed), queue_full.', labelNames: ['reason'] as const, registers })
  const auditFlushes = new Counter({ name: `${p}audit_flushes_total`, help: 'Audit/usage batch writes, by result.', labelNames: ['result'] as const, registers })
  const auditFlushSeconds = new Histogram({ name: `${p}audit_flush_duration_seconds`, help: 'Time one audit/usage batch write took.', buckets: FLUSH_BUCKETS, registers })
  const reloads = new Counter({ name: `${p}config_reloads_total`, help: 'Configuration reloads, by result.', labelNames: ['result'] as const, registers })

  const cacheRequests = new Counter({ name: `${p}cache_requests_total`, help: 'Requests under a cache policy, by what the response cache did: hit, miss or bypass.', labelNames: ['result'] as const, registers })
  let cacheBytes: (() => number) | null = null
  new Gauge({
    name: `${p}cache_bytes`,
    help: 'Bytes of answers the response cache holds in this process (0 when the cache is in Redis).',
    registers,
    collect() {
      this.set(cacheBytes ? cacheBytes() : 0)
    },
  })

  let auditSize: (() => number) | null = null
  new Gauge({
    name: `${p}audit_buffered`,
    help: 'Audit rows waiting for the next batch write.',
    registers,
    collect() {
      this.set(auditSize ? auditSize() : 0)
    },
  })

  let connections: (() => { open: number; max: number; refused: number }) | null = null
  const connectionGauges = [
    ['open', 'Client connections open right now.'],
    ['max', 'The cap on open client connections (--max-connections); connections beyond it are closed on arrival.'],
  ] as const
  for (const [figure, help] of connectionGauges) {
    new Gauge({
      name: `${p}connections_${figure}`,
      help,
      registers,
      collect() {
        this.set(connections ? connections()[figure] : 0)
      },
    })
  }
  new Counter({
    name: `${p}connections_refused_total`,
    help: 'Client connections closed on arrival because the cap was reached.',
    registers,
    collect() {
      this.reset()
      if (connections) this.inc(connections().refused)
    },
  })

  let gateway: HealthSource | null = null
  new Gauge({
    name: `${p}circuit_state`,
    help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open. Empty when the gateway reports no health.',
    labelNames: ['provider', 'key'] as const,
    registers,
    collect() {
      this.reset()
      if (!gateway) return
      for (const c of safeHealth(gateway).circuits) this.set({ provider: labels.provider(c.provider), key: labels.key(c.provider, c.key) }, CIRCUIT_VALUE[c.state])
    },
  })
  new Gauge({
    name: `${p}key_healthy`,
    help: 'Upstream key health: 1 healthy, 0 not (cooling down, failing, disabled by the gateway).',
    labelNames: ['provider', 'key'] as const,
    registers,
    collect() {
      this.reset()
      if (!gateway) return
      for (const k of safeHealth(gateway).keys) this.set({ provider: labels.provider(k.provider), key: labels.key(k.provider, k.key) }, k.healthy ? 1 : 0)
    },
  })

  // The series a request lands in, found with one string key per request (series.ts says why).
  // Label values are bounded (labels.ts), so these maps are too; the cap is only a backstop.
  const series = new Map<string, RequestSeries>()
  const seriesFor = (route: string, model: string, provider: string, stream: boolean, status: string): RequestSeries => {
    const id = `${route}\u0000${model}\u0000${provider}\u0000${stream ? 1 : 0}\u0000${status}`
    let s = series.get(id)
    if (!s) {
      if (series.size >= SERIES_CAP) series.clear()
      s = {
        requests: requests.labels({ route, model, provider, status }),
        duration: duration.labels({ route, model, provider, stream: stream ? 'true' : 'false' }),
        upstream: upstream.labels({ model, provider }),
        overhead: overhead.labels({ route }),
        ttft: ttft.labels({ model, provider }),
        tokens: new Map(),
      }
      series.set(id, s)
    }
    return s
  }
  return {
    registry,
    requestDone(r, upstreamMs) {
      const route = routeLabel(r.path)
      const model = labels.model(r.model)
      const provider = labels.provider(r.provider)
      const s = seriesFor(route, model, provider, r.stream, statusLabel(r.status))
      s.requests.value++
      s.duration.observe(r.ms / 1000)
      if (upstreamMs !== null) {
        s.upstream.observe(upstreamMs / 1000)
        s.overhead.observe(Math.max(0, r.ms - upstreamMs) / 1000)
      }
      if (r.ttftMs !== null && r.ttftMs !== undefined) s.ttft.observe(r.ttftMs / 1000)
      if (r.usage) {
        const client = labels.client(r.client)
        let t = s.tokens.get(client)
        if (!t) {
          if (s.tokens.size >= SERIES_CAP) s.tokens.clear()
          t = { in: tokens.labels({ direction: 'in', model, provider, client }), out: tokens.labels({ direction: 'out', model, provider, client }) }
          s.tokens.set(client, t)
        }
        if (r.usage.prompt_tokens > 0) t.in.value += r.usage.prompt_tokens
        if (r.usage.completion_tokens > 0) t.out.value += r.usage.completion_tokens
      }
      if (r.cache) cacheRequests.inc({ result: r.cache })
      const n = r.attempts.length
      if (n > 0) {
        for (let i = 0; i < n; i++) {
          const a = r.attempts[i]!
          attempts.labels({ provider: a.provider === r.provider ? provider : labels.provider(a.provider), outcome: a.error ? statusLabel(a.error.status) : 'ok' }).value++
        }
        if (n > 1) retries.inc({ model }, n - 1)
        const kind = fallbackKind(r)
        if (kind !== null && kind !== 'retry') fallbacks.inc({ model, kind: wordLabel(kind) })
      }
    },
    streamOpened: () => activeStreams.inc(),
    streamClosed: () => activeStreams.dec(),
    rateLimited: (scope) => rateLimited.inc({ scope: wordLabel(scope) }),
    auditDropped: (rows) => auditDropped.inc(rows),
    captureDropped: (reason, bodies) => captureDropped.inc({ reason }, bodies),
    auditFlushed(ok, seconds) {
      auditFlushes.inc({ result: ok ? 'ok' : 'error' })
      if (ok) auditFlushSeconds.observe(seconds)
    },
    configReloaded: (ok) => reloads.inc({ result: ok ? 'ok' : 'error' }),
    watchGateway(g) {
      gateway = hasHealth(g) ? g : null
    },
    watchAuditBuffer(size) {
      auditSize = size
    },
    watchCache(bytes) {
      cacheBytes = bytes
    },
    watchConnections(figures) {
      connections = figures
    },
    budgets: {
      used: (level, name, period, ratio) => budgetUsed.set({ level: wordLabel(level), name: name.slice(0, 63), period: wordLabel(period) }, ratio),
    },
    gatewayEvents: {
      circuit(e) {
        const to = normalizeCircuitState(e.to)
        if (to) circuitTransitions.inc({ provider: labels.provider(e.provider), key: labels.key(e.provider, e.key), to })
      },
      keyHealth(e) {
        keyHealthChanges.inc({ provider: labels.provider(e.provider), key: labels.key(e.provider, e.key), to: wordLabel(e.to) })
      },
    },
  }
}

function safeHealth(source: HealthSource) {
  try {
    return readHealth(source.health())
  } catch {
    return { circuits: [], keys: [] }
  }
}

/**
 * How the last attempt differs from the first: null when there was one attempt (or none); otherwise the
 * gateway's own kind when it recorded one (key, provider, global), else derived: 'retry' for the same
 * key again, 'key' for another key of the same provider, 'provider' for another route target.
 */
export function fallbackKind(r: Pick<RequestRecord, 'attempts'>): string | null {
  const n = r.attempts.length
  if (n < 2) return null
  const first = r.attempts[0]!
  const last = r.attempts[n - 1]!
  const recorded = (last as { fallback?: unknown }).fallback
  if (typeof recorded === 'string') return recorded
  if (first.provider !== last.provider || first.upstreamModel !== last.upstreamModel) return 'provider'
  if (first.key !== last.key) return 'key'
  return 'retry'
}
