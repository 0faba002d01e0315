import { Command } from 'commander'
import { limitHeapGrowth } from './heap-growth.js'
import { resolveDataDir } from '../store/paths.js'
import type { ObservabilityFlags } from '../telemetry/settings.js'
import { CliError, databaseUrlOption, err, type CliDeps } from './context.js'
import { gcThreads, memoryReducerState, SUPERVISOR_ENV } from './respawn.js'
import type { ServeFlags } from './serve-config.js'

export function serveCommand(deps: CliDeps): Command {
  return new Command('serve')
    .description('start the OpenAI-compatible HTTP server')
    .option('--host <host>', 'address to listen on (default 127.0.0.1, or $PROXY_HOST)')
    .option('--port <port>', 'port to listen on (default 8000, or $PROXY_PORT)')
    .option('--demo', 'add a mock provider, demo models and a demo client key, then serve')
    .option('--data-dir <dir>', 'data directory (default: $PROXY_DATA_DIR or ~/.local/share/proxy)')
    .addOption(databaseUrlOption())
    .option('--log-level <level>', 'trace|debug|info|warn|error (default info, or $PROXY_LOG_LEVEL)')
    .option('--max-body <bytes>', 'largest request body accepted (default 10485760, or $PROXY_MAX_BODY_BYTES)')
    .option('--max-json-depth <levels>', 'deepest nesting of arrays and objects a request body may have (default 64, or $PROXY_MAX_JSON_DEPTH)')
    .option('--header-timeout <seconds>', 'time a client has to send its request headers, also on a new connection (default 10, or $PROXY_HEADER_TIMEOUT_SECONDS)')
    .option('--body-timeout <seconds>', 'then to send the request body; answers and streams are not limited (default 60, or $PROXY_BODY_TIMEOUT_SECONDS)')
    .option('--keepalive-timeout <seconds>', 'how long an idle keep-alive connection stays open (default 65, or $PROXY_KEEPALIVE_TIMEOUT_SECONDS)')
    .option('--max-connections <n>', 'open client connections at most; more are refused (default: below the open-file limit, or $PROXY_MAX_CONNECTIONS)')
    .option('--config <file>', 'JSON config file (host, port, data_dir, database_url, log_level, max_body_bytes, max_json_depth, header/body/keepalive_timeout_seconds, max_connections), or $PROXY_CONFIG')
    .option('--log-format <format>', 'json|pretty|auto: pretty on a terminal, JSON otherwise (default auto, or $PROXY_LOG_FORMAT)')
    .option('--capture', 'keep request and response bodies of every client in the audit trail ($PROXY_CAPTURE=on)')
    .option('--capture-max-bytes <bytes>', 'cap per captured body (default 32768, 262144 with a capture store, or $PROXY_CAPTURE_MAX_BYTES)')
    .option('--capture-store <url>', 'keep captured bodies over --capture-inline-max in this S3 (or S3-compatible) bucket, s3://bucket/prefix (or $PROXY_CAPTURE_STORE)')
    .option('--capture-inline-max <bytes>', 'with a capture store, bodies up to this size stay in the audit row (default 16384, or $PROXY_CAPTURE_INLINE_MAX)')
    .option('--audit-retention-days <days>', 'delete audit rows older than this, hourly (default: keep, or $PROXY_AUDIT_RETENTION_DAYS)')
    .option('--metrics-auth <mode>', 'admin|none|auto: who may GET /metrics; auto is open on loopback, admin key otherwise ($PROXY_METRICS_AUTH)')
    .option('--alert-webhook <url>', 'POST a JSON event when a money budget reaches 80% and 100% (or $PROXY_ALERT_WEBHOOK)')
    .option('--redis-url <url>', 'share rate limits and quotas with other instances through this Redis, e.g. redis://127.0.0.1:6379 (or $PROXY_REDIS_URL)')
    .option('--otlp-endpoint <url>', 'send traces over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (or $OTEL_EXPORTER_OTLP_ENDPOINT; see docs/traces.md)')
    .option('--drain-seconds <n>', 'on SIGTERM/SIGINT, let open requests and streams finish this long before ending them (default 25, or $PROXY_DRAIN_SECONDS)')
    .addHelpText('after', '\nExamples:\n  proxy serve --demo                 # try it with no API key at all\n  proxy serve --host 0.0.0.0 --port 8080\n  PROXY_DATA_DIR=/var/lib/proxy proxy serve')
    .action(async (flags: ServeFlags & ObservabilityFlags & { demo?: boolean; redisUrl?: string; alertWebhook?: string; drainSeconds?: string; otlpEndpoint?: string }) => {
      // The server, logger and store load here, not when another command (or --help) runs.
      const [{ startProxy }, { createLogger, flushLogger }, { isLoopback, resolveObservability }, { seedDemo }, { resolveServeSettings }] = await Promise.all([
        import('../server/start.js'),
        import('../telemetry/logger.js'),
        import('../telemetry/settings.js'),
        import('./demo.js'),
        import('./serve-config.js'),
      ])
      const settings = resolveServeSettings(flags, deps.env)
      const drainSeconds = resolveDrainSeconds(flags.drainSeconds ?? deps.env.PROXY_DRAIN_SECONDS)
      const observability = resolveObservability(flags, deps.env)
      const pretty = observability.logFormat === 'pretty' || (observability.logFormat === 'auto' && deps.stdout.isTTY === true)
      const logger = createLogger({ level: settings.logLevel, pretty })
      const heapFlag = limitHeapGrowth(process.execArgv, deps.env.PROXY_HEAP_GROWING_PERCENT)
      let demo: { key: string; models: string[] } | null = null
      const proxy = await startProxy({
        dataDir: resolveDataDir(settings.dataDir, deps.env),
        databaseUrl: settings.databaseUrl,
        host: settings.host,
        port: settings.port,
        env: deps.env,
        logger,
        maxBodyBytes: settings.maxBodyBytes,
        maxJsonDepth: settings.maxJsonDepth,
        connections: settings.connections,
        keychain: deps.keychain,
        observability,
        redisUrl: flags.redisUrl,
        alertWebhook: flags.alertWebhook,
        otlpEndpoint: flags.otlpEndpoint,
        prepare: async (store) => {
          if (flags.demo) demo = await seedDemo(store)
        },
      })
      // Signals are watched before the banner: whoever waits for it may stop the server at once.
      // A signal while the server starts still ends the process, so a hung start can be interrupted.
      const stop = watchStop(deps)
      const snapshot = proxy.config.current()
      logger.info({ event: 'start', url: proxy.url, dataDir: proxy.store.dataDir, store: proxy.store.location, masterKey: proxy.store.masterKey.source, routes: snapshot.routes.size, capture: observability.captureAll ? 'all' : 'per-client', captureStore: observability.captureStore ?? undefined, auditRetentionDays: observability.auditRetentionDays, v8: heapFlag ?? 'as started', memoryReducer: memoryReducerState(process.execArgv), gc: gcThreads(process.execArgv) }, 'proxy listening')
      if (observability.metricsAuth === 'none' && !isLoopback(settings.host)) logger.warn({ event: 'start', host: settings.host }, '/metrics is open on a non-loopback address (PROXY_METRICS_AUTH=none)')
      err(deps, banner(proxy.url, proxy.store.kind === 'postgres' ? `${proxy.store.dataDir}, store ${proxy.store.location}` : proxy.store.dataDir, demo, snapshot.routes.size, snapshot.clientsByHash.size))
      try {
        await stop.stopped
        err(deps, `Shutting down: finishing open requests (up to ${drainSeconds} s)…`)
        logger.info({ event: 'shutdown', drainSeconds }, 'shutting down: finishing open requests')
        await proxy.close(drainSeconds * 1000)
        logger.info({ event: 'shutdown', auditDropped: proxy.audit.dropped }, 'proxy stopped')
        await flushLogger(logger)
      } finally {
        stop.release()
      }
    })
}

function banner(url: string, dataDir: string, demo: { key: string; models: string[] } | null, routes: number, clients: number): string {
  const lines = [`proxy is listening on ${url}  (data: ${dataDir})`]
  if (demo?.key) {
    lines.push(
      '',
      `Demo client key (shown once; a restart with --demo issues a new one):`,
      `  ${demo.key}`,
      '',
      `Models: ${demo.models.join(', ')}`,
      '',
      'Try it:',
      `  curl ${url}/v1/chat/completions -H "Authorization: Bearer ${demo.key}" -H "Content-Type: application/json" -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'`,
    )
  } else if (routes === 0) {
    lines.push(
      '',
      'No models are configured yet, so every /v1 request will fail. To add a provider:',
      '  proxy providers add openai --type openai',
      '  printenv OPENAI_API_KEY | proxy keys add openai',
      '  proxy models add gpt-4o-mini --target openai/gpt-4o-mini',
      '  proxy clients add my-app',
      'or restart with --demo to try it without any API key. Changes apply without a restart.',
    )
  } else if (clients === 0) {
    lines.push('', "No client keys exist yet: create one with 'proxy clients add NAME'.")
  }
  return lines.join('\n') + '\n'
}

function resolveDrainSeconds(value: string | undefined): number {
  if (value === undefined || value === '') return 25
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0 || n > 3600) throw new CliError(`--drain-seconds (or PROXY_DRAIN_SECONDS) must be a number of seconds from 0 to 3600, not '${value}'.`)
  return n
}

/**
 * Resolves on the first SIGINT or SIGTERM, on deps.stopSignal, or when the `proxy` process that
 * started this one with the V8 flag is gone (src/cli/respawn.ts). Further signals are ignored until
 * `release()`: a service manager that signals every process of the service reaches this one twice
 * (directly and through the parent), and the default action would end the drain and the audit
 * writer's last batch with it. The drain has its own deadline.
 */
function watchStop(deps: CliDeps): { stopped: Promise<void>; release(): void } {
  let stop!: () => void
  const stopped = new Promise<void>((resolve) => (stop = resolve))
  let stopping = false
  const onStop = () => {
    if (!stopping) {
      stopping = true
      stop()
    }
  }
  process.on('SIGINT', onStop)
  process.on('SIGTERM', onStop)
  // A 'disconnect' listener keeps the IPC channel, and so this process, alive: release() takes it off.
  const supervisor = deps.env[SUPERVISOR_ENV]
  const watching = supervisor !== undefined && supervisor === String(process.ppid) && process.connected
  if (watching) process.once('disconnect', onStop)
  else if (supervisor !== undefined) onStop() // the `proxy` process that started this one died while it started
  deps.stopSignal?.addEventListener('abort', onStop, { once: true })
  return {
    stopped,
    release() {
      process.off('SIGINT', onStop)
      process.off('SIGTERM', onStop)
      if (watching) process.off('disconnect', onStop)
    },
  }
}
