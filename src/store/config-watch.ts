/**
 * How a server learns that another process changed the configuration, per backend. The config source
 * (config-source.ts) compares the counter it is told with the one it loaded and reloads when it moved.
 * - SQLite: `PRAGMA data_version` changes exactly when another connection commits, so a tick costs one
 *   in-memory pragma; only then is the counter (migration 0005) read, because most other commits are
 *   the audit thread's rows and no reason to reload.
 * - PostgreSQL: the counter's trigger NOTIFYs in the changing transaction; a connection of its own
 *   LISTENs. While that connection is lost the counter is polled every second, and read again once it
 *   is back, so a change made meanwhile is not missed.
 */
import { sql } from 'kysely'
import type pg from 'pg'
import type { PostgresStore, SqliteStore, Store } from './db.js'
import { CONFIG_CHANNEL, describeConnectionError, loadPg, postgresConfig } from './dialect.js'
import type { StoreHealth } from './store-health.js'

export interface ConfigWatch {
  /** the configuration counter now */
  version(): Promise<number>
  /** from now on, `seen` is called with the counter whenever it may have moved; errors go to `failed` */
  start(seen: (version: number) => void, failed: (err: unknown) => void): void
  close(): void
}

export interface WatchOptions {
  /** SQLite: how often data_version is read (default 250 ms). PostgreSQL: the poll while LISTEN is down (default 1 s). */
  pollMs?: number
  health?: StoreHealth
}

export function configWatch(store: Store, opts: WatchOptions = {}): ConfigWatch {
  return store.kind === 'sqlite' ? sqliteWatch(store, opts) : postgresWatch(store, opts)
}

function sqliteWatch(store: SqliteStore, opts: WatchOptions): ConfigWatch {
  const configVersion = store.sqlite.prepare('SELECT version FROM config_version WHERE id = 1').pluck()
  const read = () => (configVersion.get() as number | undefined) ?? 0
  // prepared once: pragma() would compile the statement at every tick
  const dataVersionStatement = store.sqlite.prepare('PRAGMA data_version').pluck()
  const dataVersion = () => dataVersionStatement.get() as number
  let timer: NodeJS.Timeout | null = null
  return {
    version: async () => read(),
    start(seen, failed) {
      let last = dataVersion()
      timer = setInterval(() => {
        try {
          const now = dataVersion()
          if (now === last) return
          last = now
          seen(read())
        } catch (err) {
          failed(err)
        }
      }, opts.pollMs ?? 250)
      timer.unref()
    },
    close: () => {
      if (timer) clearInterval(timer)
    },
  }
}

const RECONNECT_MS = 1000

function postgresWatch(store: PostgresStore, opts: WatchOptions): ConfigWatch {
  const read = async () => {
    const { rows } = await sql<{ version: number }>`SELECT version FROM config_version WHERE id = 1`.execute(store.db)
    return Number(rows[0]?.version ?? 0)
  }
  let closed = false
  let client: pg.Client | null = null
  let poll: NodeJS.Timeout | null = null
  let retry: NodeJS.Timeout | null = null
  return {
    version: read,
    start(seen, failed) {
      const check = () => read().then(seen, failed)
      // while polling the store is known to be down (health says so): a failed poll is no news
      let polling = false
      const startPolling = () => {
        poll ??= setInterval(() => {
          // one poll at a time: against an unreachable host each waits for the connect timeout
          if (polling) return
          polling = true
          read()
            .then(seen, () => {})
            .finally(() => (polling = false))
        }, opts.pollMs ?? 1000)
        poll.unref()
      }
      const lost = (err: unknown) => {
        opts.health?.down('listen', describeConnectionError(err, store.url))
        const c = client
        client = null
        c?.removeAllListeners()
        c?.on('error', () => {})
        void c?.end().catch(() => {})
        startPolling()
        if (!closed && !retry) retry = setTimeout(listen, RECONNECT_MS)
        retry?.unref()
      }
      const listen = async () => {
        retry = null
        if (closed) return
        const driver = await loadPg()
        const c = new driver.Client(postgresConfig(driver, store.url))
        client = c
        c.on('error', lost)
        c.on('end', () => client === c && lost(new Error('the LISTEN connection ended')))
        c.on('notification', (n) => {
          if (n.channel === CONFIG_CHANNEL) seen(Number(n.payload))
        })
        try {
          await c.connect()
          await c.query(`LISTEN ${CONFIG_CHANNEL}`)
        } catch (err) {
          if (client === c) lost(err)
          return
        }
        if (closed) return void c.end().catch(() => {})
        opts.health?.up('listen')
        if (poll) clearInterval(poll)
        poll = null
        // what changed while nobody listened
        check()
      }
      void listen()
    },
    close() {
      closed = true
      if (poll) clearInterval(poll)
      if (retry) clearTimeout(retry)
      const c = client
      client = null
      c?.removeAllListeners()
      c?.on('error', () => {})
      void c?.end().catch(() => {})
    },
  }
}
