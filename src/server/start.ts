/**
 * Composition root of `proxy serve`: store -> config snapshot -> gateway -> app -> HTTP server.
 * Everything is built here and passed down; nothing is a module-level singleton, so tests start the
 * real thing on port 0 with a temp data dir.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { hostname } from 'node:os'
import type { AddressInfo, Socket } from 'node:net'
import { Registry } from '../telemetry/prom.js'
import { Agent } from './undici-agent.js'
import { Gateway } from '../gateway/gateway.js'
import { resilienceEvents } from '../gateway/log-events.js'
import { createLimiter, type Limiter } from '../limits/limiter.js'
import { QuotaBook } from '../limits/quotas.js'
import { SpendBooks } from '../limits/budgets.js'
import { loadPeriodTotals, periodTotalStatements } from '../store/repos/period-totals.js'
import { BudgetAlerts } from '../telemetry/budget-alerts.js'
import { loadQuotaUsage, quotaUsageStatements } from '../store/repos/quotas.js'
import { createHealthWriter } from '../store/repos/key-health.js'
import { createConfigSource, type ConfigSource } from '../store/config-source.js'
import { openStore, type Store } from '../store/db.js'
import type { KeychainBackend } from '../store/master-key.js'
import { latestMigration } from '../store/migrate.js'
import type { Env } from '../store/paths.js'
import { setLogScrubber, type Logger } from '../telemetry/logger.js'
import { AuditWriter } from '../telemetry/audit-writer.js'
import { serverStoreWriter } from '../store/store-writer.js'
import { StoreHealth } from '../store/store-health.js'
import { createMetrics, type ProxyMetrics } from '../telemetry/metrics.js'
import { SecretScrubber } from '../telemetry/redact.js'
import { startRetention } from '../telemetry/retention.js'
import { openCaptureOffload } from '../telemetry/capture-offload.js'
import { ResponseBook } from '../store/response-book.js'
import { pruneResponsesStatement } from '../store/repos/responses.js'
import { metricsNeedAdmin, resolveObservability, type ObservabilitySettings } from '../telemetry/settings.js'
import { LiveStats } from '../telemetry/live-stats.js'
import { createTelemetry } from '../telemetry/telemetry.js'
import { resolveTraceSettings } from '../telemetry/tracing/settings.js'
import type { RequestTracer } from '../telemetry/tracing/types.js'
import { writeLocalAccess, type LocalAccess } from './admin/local-access.js'
import { createRequestListener, DEFAULT_MAX_BODY_BYTES } from './app.js'
import { ConnectionCounter, serverOptions, withDefaults, type ConnectionLimits } from './connections.js'
import { createResponseCache } from './cache/create.js'
import type { Clock } from '../gateway/clock.js'

export interface StartOptions {
  dataDir: string
  /** postgres://… (`--database-url`): the store lives there; SQLite in the data dir without it */
  databaseUrl?: string | null
  host?: string
  port?: number
  env?: Env
  logger: Logger
  maxBodyBytes?: number
  /** deepest nesting of arrays and objects a request body may have (`--max-json-depth`); 64 when absent */
  maxJsonDepth?: number
  reloadPollMs?: number
  keychain?: KeychainBackend | null
  /** runs after the store is open and before the first snapshot is taken (e.g. --demo seeding) */
  prepare?: (store: Store) => Promise<void>
  /** how long Responses API objects are kept (default: PROXY_RESPONSES_RETENTION_DAYS, else 30) */
  responsesRetentionDays?: number
  /** capture, audit retention, /metrics auth; unset fields come from PROXY_* variables, then defaults */
  observability?: Partial<ObservabilitySettings>
  /** the Prometheus registry to fill; a fresh one by default (never prom-client's global registry) */
  registry?: Registry
  /** Redis for limits shared between instances (`--redis-url`); PROXY_REDIS_URL when absent, in-memory limits without either */
  redisUrl?: string | null
  /** where budget alerts (80% and 100%) are POSTed (`--alert-webhook`); PROXY_ALERT_WEBHOOK when absent */
  alertWebhook?: string | null
  /** header, body and keep-alive timeouts and the connection cap; unset ones take the defaults of connections.ts */
  connections?: Partial<ConnectionLimits>
  /** the response cache's clock (tests: TTLs without waiting) */
  cacheClock?: Clock
  /** OTLP/HTTP collector for traces (`--otlp-endpoint`); the OTEL_* variables when absent, no traces without either */
  otlpEndpoint?: string
}

export interface RunningProxy {
  url: string
  port: number
  store: Store
  config: ConfigSource
  server: Server
  /** counters and histograms for /metrics; other parts record through it (e.g. `metrics.rateLimited(scope)`) */
  metrics: ProxyMetrics
  /** the batched audit/usage writer; `close()` flushes it after the server drained */
  audit: AuditWriter
  /** rate limits and quotas (memory or Redis); `limits.shared` is the same backend's small shared state */
  limits: Limiter
  /** the rolling windows behind /admin/v1/stats */
  liveStats: LiveStats
  /**
   * Stops accepting, lets open requests and streams finish until the deadline, then ends the streams
   * still open with a `server_shutting_down` error event and cuts what remains; flushes audit, usage and
   * health, closes the store and deletes <dataDir>/admin.token and server.json.
   */
  close(deadlineMs?: number): Promise<void>
}

export async function startProxy(opts: StartOptions): Promise<RunningProxy> {
  // checked first: a wrong OTEL_* setting fails the start before anything is opened
  const traceSettings = resolveTraceSettings(opts.otlpEndpoint, opts.env ?? process.env)
  const store = await openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl, env: opts.env, keychain: opts.keychain })
  // what the PostgreSQL writer and LISTEN connection last saw (SQLite: always up while open)
  const storeHealth = new StoreHealth()
  await opts.prepare?.(store)
  const logger = opts.logger
  const observability: ObservabilitySettings = { ...resolveObservability({}, opts.env ?? process.env), ...opts.observability }
  const registry = opts.registry ?? new Registry()
  const metrics = createMetrics(registry, { config: () => config.current() })
  let configError: string | null = null
  const config = await createConfigSource(store, {
    pollMs: opts.reloadPollMs,
    health: storeHealth,
    onReload: (s) => {
      configError = null
      metrics.configReloaded(true)
      logger.info({ event: 'reload', routes: s.routes.size, providers: s.providers.size, clients: s.clientsByHash.size }, 'config reloaded')
      for (const problem of s.problems) logger.warn(problem)
    },
    onError: (err) => {
      configError = err instanceof Error ? err.message : String(err)
      metrics.configReloaded(false)
      logger.error({ event: 'reload', err: configError }, 'config reload failed; still serving the previous snapshot')
    },
  })
  for (const problem of config.current().problems) logger.warn(problem)
  const scrubber = new SecretScrubber(() => config.current())
  setLogScrubber(logger, (text) => scrubber.scrub(text))
  // Captured bodies over the inline cap go to the capture store (S3), when one is set.
  const capture = await openCaptureOffload(observability, opts.env ?? process.env, logger, metrics)
  const audit = new AuditWriter({
    store,
    config: () => config.current(),
    logger,
    metrics,
    flushMs: observability.auditFlushMs,
    scrubber,
    offload: capture?.offload,
    sink: (events) =>
      serverStoreWriter(store, events, {
        flushMs: observability.auditFlushMs,
        health: storeHealth,
        onFallback: (reason, lost) => logger.warn({ err: reason, lost }, 'audit thread unavailable; writing audit rows on the main thread'),
      }),
  })
  metrics.watchAuditBuffer(() => audit.size)
  const retention = observability.auditRetentionDays ? startRetention({ apply: (writes) => audit.apply(writes), db: store.db, days: observability.auditRetentionDays, logger, capture: capture ? { objects: capture.objects, db: store.db } : undefined }) : null
  // Responses API objects kept for translated providers (and where native ones were made), written behind.
  const responseBook = new ResponseBook({ db: store.db, apply: (writes) => audit.apply(writes) })
  const responsesRetentionDays = opts.responsesRetentionDays ?? (Number((opts.env ?? process.env).PROXY_RESPONSES_RETENTION_DAYS) || DEFAULT_RESPONSES_RETENTION_DAYS)
  const responsesPrune = setInterval(() => void audit.apply([pruneResponsesStatement(store.db, new Date().toISOString(), 5000)]).catch(() => undefined), 3_600_000)
  responsesPrune.unref()

  // Limits and quotas: in memory, or shared through Redis. Quota usage is written behind, never per request.
  const env = opts.env ?? process.env
  const quotaBook = new QuotaBook({
    store: { add: (rows) => audit.apply(quotaUsageStatements(store.db, rows)), load: (day, month) => loadQuotaUsage(store.db, day, month) },
    onError: (err) => logger.error({ event: 'limits', err: err instanceof Error ? err.message : String(err) }, 'could not persist quota usage; retrying'),
  })
  await quotaBook.load()
  // Money spent and team tokens per period, written behind the same way (src/limits/budgets.ts).
  const spendBooks = new SpendBooks({
    store: (scope) => ({ add: (rows) => audit.apply(periodTotalStatements(store.db, scope, rows.map((r) => ({ subjectId: r.clientId, period: r.period, periodKey: r.periodKey, amount: r.tokens })))), load: async (day, month) => (await loadPeriodTotals(store.db, scope, day, month)).map((r) => ({ clientId: r.subjectId, period: r.period, periodKey: r.periodKey, tokens: r.amount })) }),
    onError: (err) => logger.error({ event: 'budgets', err: err instanceof Error ? err.message : String(err) }, 'could not persist spend; retrying'),
  })
  await spendBooks.load()
  // a crossing is claimed in the limits' shared state, so instances sharing a Redis report it once
  const budgetAlerts = new BudgetAlerts({ logger, metrics: metrics.budgets, webhook: opts.alertWebhook ?? env.PROXY_ALERT_WEBHOOK ?? null, claim: async (id, ttlMs) => (await limits.shared.incr(`budget-alert:${id}`, ttlMs)) === 1 })
  const limits = await createLimiter({ config: () => config.current(), quotas: quotaBook, spend: spendBooks, onBudget: (rule, spent) => budgetAlerts.observe(rule, spent), logger, metrics, redisUrl: opts.redisUrl ?? env.PROXY_REDIS_URL, redisPrefix: env.PROXY_REDIS_PREFIX, redisTimeoutMs: Number(env.PROXY_REDIS_TIMEOUT_MS) || undefined })
  await limits.warmUp()

  // One pool per upstream origin, kept alive between requests.
  // The connect timeout comes from the global policy as it is at start (a pool cannot change it later).
  const connectTimeout = config.current().globalPolicy.timeouts_ms.connect
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256, pipelining: 1, connect: { timeout: connectTimeout } })
  // Key health and circuit states are written behind, in batches, never on the request path.
  const healthWriter = createHealthWriter(store.db, { apply: (writes) => audit.apply(writes), onError: (err) => logger.error({ event: 'health_write', err: err instanceof Error ? err.message : String(err) }, 'could not persist key health') })
  // Circuit openings, key cooldowns and invalid keys are also published in the limits backend's shared
  // state and polled back in the background, so instances sharing a Redis honour each other's.
  const gateway = new Gateway({ config: () => config.current(), dispatcher, healthSink: healthWriter, events: resilienceEvents(logger, metrics.gatewayEvents), shared: limits.shared, sharedPollMs: limits.backendKind === 'redis' ? undefined : 0 })
  metrics.watchGateway(gateway)
  // The exact response cache (docs/cache.md): in memory, or in the limits' Redis when there is one.
  const cache = await createResponseCache({ config: () => config.current(), gateway, limits, logger, clock: opts.cacheClock })
  metrics.watchCache(() => cache.store.bytes())
  const metricsRequireAdmin = metricsNeedAdmin(observability.metricsAuth, opts.host ?? '127.0.0.1')
  let draining = false
  const liveStats = new LiveStats()
  const telemetry = createTelemetry({ logger, metrics, audit, captureAll: observability.captureAll, captureMaxBytes: observability.captureMaxBytes, config: () => config.current(), liveStats, scrubber })
  // Traces: OpenTelemetry is loaded only when they are on; otherwise the request path holds no tracer at all.
  let tracer: RequestTracer | undefined
  if (traceSettings) {
    const { createOtelTracer } = await import('../telemetry/tracing/otel-tracer.js')
    tracer = createOtelTracer({ settings: traceSettings, config: () => config.current(), scrubber, registry, logger })
    logger.info({ event: 'traces', url: traceSettings.url.replace(/\/\/[^/@]*@/, '//'), sampler: traceSettings.sampler, ratio: traceSettings.ratio, service: traceSettings.serviceName }, 'exporting traces over OTLP/HTTP')
  }
  const shutdown = new AbortController()
  let localAccess: LocalAccess | null = null
  const listener = createRequestListener({
    gateway,
    config: () => config.current(),
    telemetry,
    metrics: { registry, requireAdmin: metricsRequireAdmin },
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxJsonDepth: opts.maxJsonDepth,
    limits,
    shutdown: shutdown.signal,
    tracer,
    responses: { book: responseBook, retentionMs: responsesRetentionDays * 86_400_000 },
    cache,
    admin: { cache, store, captureStore: capture?.objects ?? null, config, gateway, liveStats, logger, localAccess: () => localAccess, draining: () => draining, connections: () => connections.figures(), instance: () => ({ id: `${hostname()}:${address.port}`, pid: process.pid, store: { kind: store.kind, ok: storeHealth.ok, detail: storeHealth.detail } }) },
    readiness: () => {
      const lim = limits.health()
      const checks: Record<string, { ok: boolean; detail?: string }> = {
        store: storeCheck(store, storeHealth),
        migrations: { ok: true, detail: latestMigration() },
        config: configError ? { ok: false, detail: configError } : { ok: true },
        draining: { ok: !draining },
        // fail-closed without Redis serves nothing: not ready. fail-open serves, degraded.
        limits: { ok: !(lim.degraded && lim.onFailure === 'closed'), detail: lim.degraded ?? lim.backend },
      }
      if (lim.degraded && lim.onFailure === 'open') checks.degraded = { ok: true, detail: `limits: ${lim.degraded}; serving with local in-memory limits (fail-open)` }
      if (!storeHealth.ok) {
        const detail = `store: ${storeHealth.detail}; serving from the configuration in memory, writes buffered`
        checks.degraded = { ok: true, detail: checks.degraded ? `${checks.degraded.detail}; ${detail}` : detail }
      }
      return { ready: Object.values(checks).every((c) => c.ok), checks }
    },
  })

  const connectionLimits = withDefaults(opts.connections)
  const server = createServer(serverOptions(connectionLimits), listener)
  const connections = new ConnectionCounter(server, connectionLimits.maxConnections)
  metrics.watchConnections(() => connections.figures())
  // Node's closeIdleConnections() skips connections that never sent a request (clients pre-connect);
  // track them so close() does not wait the whole deadline for them.
  const unused = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    unused.add(socket)
    socket.once('close', () => unused.delete(socket))
  })
  server.on('request', (req: IncomingMessage) => unused.delete(req.socket))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // A deeper accept queue than Node's 511: a burst of new connections (a thousand streams opening at
    // once) must wait in the queue, not be dropped into the kernel's one-second SYN retry.
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', 4096, () => {
      server.off('error', reject)
      resolve()
    })
  }).catch(async (err: unknown) => {
    // An open Redis connection would keep the process alive after a failed start.
    gateway.close()
    await limits.close().catch(() => undefined)
    throw err
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}`
  // <dataDir>/server.json and admin.token: how `proxy top` and other local commands reach this server.
  try {
    localAccess = writeLocalAccess(store.dataDir, url)
  } catch (err) {
    logger.warn({ event: 'start', err: err instanceof Error ? err.message : String(err) }, 'could not write the local admin token; local commands need --url and --admin-key')
  }
  let closing: Promise<void> | null = null

  return {
    url,
    port: address.port,
    store,
    config,
    server,
    metrics,
    audit,
    limits,
    liveStats,
    close(deadlineMs = 10_000) {
      closing ??= (async () => {
        draining = true
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        for (const socket of unused) socket.destroy()
        // At the deadline, streams still open get a last `server_shutting_down` error event and end
        // (their connections then turn idle and are swept); whatever is still open shortly after is cut.
        let cut: NodeJS.Timeout | undefined
        const timer = setTimeout(() => {
          shutdown.abort()
          cut = setTimeout(() => server.closeAllConnections(), STREAM_END_GRACE_MS)
        }, deadlineMs)
        // A keep-alive connection whose last response ends after close() turns idle but stays open;
        // close those as they appear instead of waiting for the deadline.
        const sweep = setInterval(() => server.closeIdleConnections(), 100)
        await closed
        clearTimeout(timer)
        clearTimeout(cut)
        clearInterval(sweep)
        // A request cut at the deadline reports (and is audited) once its upstream call sees the abort.
        await settled(() => upstreamsInFlight(gateway) === 0 && liveStats.activeStreams === 0, SETTLE_MS)
        config.close()
        retention?.stop()
        clearInterval(responsesPrune)
        // The last settlements and quota usage, then the Redis connection (the shared-health poll first).
        gateway.close()
        // Each hands its last writes to the store writer and waits for their commit, which a store that
        // refuses writes (PostgreSQL down) never gives: waited for only so long here, and settled below,
        // once the writer's close has committed them or given them up.
        const limitsClosed = limits.close()
        await settledWithin(limitsClosed, HANDOVER_WAIT_MS)
        const healthClosed = healthWriter.close()
        await settledWithin(healthClosed, HANDOVER_WAIT_MS)
        // Every request has finished (and reported) by now: the last ones are accounted for, then the
        // writer commits the last audit rows, and the health and quota writes just handed over, before
        // the store closes.
        telemetry.flush()
        // every span has ended with its request: the last batches go to the collector
        await tracer?.shutdown()
        const booked = responseBook.flush()
        await settledWithin(booked, HANDOVER_WAIT_MS)
        await audit.close()
        await Promise.allSettled([limitsClosed, healthClosed, booked])
        capture?.objects.close()
        await dispatcher.close().catch(() => dispatcher.destroy())
        await store.close()
        localAccess?.remove()
      })()
      return closing
    },
  }
}

const DEFAULT_RESPONSES_RETENTION_DAYS = 30

/** after the drain deadline, how long ended streams get to flush their last event before every connection is cut */
const STREAM_END_GRACE_MS = 500
/** the longest wait, after the connections closed, for cut requests to report */
const SETTLE_MS = 2000

function upstreamsInFlight(gateway: Gateway): number {
  let n = 0
  for (const p of gateway.health().providers) n += p.inFlight
  return n
}

/**
 * How long shutdown waits for a part's last writes to commit before it closes the store writer anyway: a
 * healthy writer commits within its flush interval (100 ms), and its close still tries for two seconds.
 */
const HANDOVER_WAIT_MS = 1000

/** Waits for `p` to settle, at most `ms`; what it settles to is its caller's to read. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p.then(() => {}, () => {}), new Promise((r) => (timer = setTimeout(r, ms)))])
  clearTimeout(timer)
}

async function settled(done: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  // the last reports run in the callbacks of the aborts that ended them
  await new Promise((r) => setImmediate(r))
}

/**
 * The store's line in /readyz. A PostgreSQL outage leaves the instance ready: requests are served from
 * the configuration in memory and writes are buffered, and an outage of the shared database would
 * otherwise take every instance out of the load balancer at once. The detail says it is down.
 */
function storeCheck(store: Store, health: StoreHealth): { ok: boolean; detail: string } {
  if (store.kind === 'sqlite') return { ok: store.sqlite.open, detail: 'sqlite' }
  return { ok: true, detail: health.ok ? 'postgres' : 'postgres: down' }
}
