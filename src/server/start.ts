/**
 * Composition root of `proxy serve`: store -> config snapshot -> gateway -> app -> HTTP server.
 * Everything is built here and passed down; nothing is a module-level singleton, so tests start the
 * real thing on port 0 with a temp data dir.
 */
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { toNodeHandler } from 'srvx/node'
import { Agent } from 'undici'
import { Gateway } from '../gateway/gateway.js'
import { createConfigSource, type ConfigSource } from '../store/config-source.js'
import { openStore, type Store } from '../store/db.js'
import type { KeychainBackend } from '../store/master-key.js'
import { latestMigration } from '../store/migrate.js'
import type { Env } from '../store/paths.js'
import type { Logger } from '../telemetry/logger.js'
import { createTelemetry } from '../telemetry/telemetry.js'
import { createApp, DEFAULT_MAX_BODY_BYTES } from './app.js'

export interface StartOptions {
  dataDir: string
  host?: string
  port?: number
  env?: Env
  logger: Logger
  maxBodyBytes?: number
  reloadPollMs?: number
  keychain?: KeychainBackend | null
  /** runs after the store is open and before the first snapshot is taken (e.g. --demo seeding) */
  prepare?: (store: Store) => Promise<void>
}

export interface RunningProxy {
  url: string
  port: number
  store: Store
  config: ConfigSource
  server: Server
  /** stops accepting, waits for open requests up to the deadline, then closes everything */
  close(deadlineMs?: number): Promise<void>
}

export async function startProxy(opts: StartOptions): Promise<RunningProxy> {
  const store = await openStore({ dataDir: opts.dataDir, env: opts.env, keychain: opts.keychain })
  await opts.prepare?.(store)
  const logger = opts.logger
  let configError: string | null = null
  const config = await createConfigSource(store, {
    pollMs: opts.reloadPollMs,
    onReload: (s) => {
      configError = null
      logger.info({ routes: s.routes.size, providers: s.providers.size, clients: s.clientsByHash.size }, 'config reloaded')
      for (const problem of s.problems) logger.warn(problem)
    },
    onError: (err) => {
      configError = err instanceof Error ? err.message : String(err)
      logger.error({ err: configError }, 'config reload failed; still serving the previous snapshot')
    },
  })
  for (const problem of config.current().problems) logger.warn(problem)

  // One pool per upstream origin, kept alive between requests.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256, pipelining: 1 })
  const gateway = new Gateway({ config: () => config.current(), dispatcher })
  let draining = false
  const app = createApp({
    gateway,
    config: () => config.current(),
    telemetry: createTelemetry(logger),
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    readiness: () => {
      const checks = {
        store: { ok: store.sqlite.open },
        migrations: { ok: true, detail: latestMigration() },
        config: configError ? { ok: false, detail: configError } : { ok: true },
        draining: { ok: !draining },
      }
      return { ready: Object.values(checks).every((c) => c.ok), checks }
    },
  })

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, toNodeHandler(app.fetch, { maxRequestBodySize: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES }) as RequestListener)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<void> | null = null

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    store,
    config,
    server,
    close(deadlineMs = 10_000) {
      closing ??= (async () => {
        draining = true
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        const timer = setTimeout(() => server.closeAllConnections(), deadlineMs)
        await closed
        clearTimeout(timer)
        config.close()
        await dispatcher.close().catch(() => dispatcher.destroy())
        await store.close()
      })()
      return closing
    },
  }
}
