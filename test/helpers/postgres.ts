/**
 * PostgreSQL for tests: the machine's server on 127.0.0.1:5432 (trust auth, user postgres), or the one
 * PROXY_TEST_PG_URL names. Every test gets a database of its own, created fresh and dropped after, so
 * runs (and parallel test files) never see each other's rows.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { openStore, type PostgresStore, type Store } from '../../src/store/db.js'
import { tempDataDir, testEnv } from './proxy.js'
import { startTcpRelay, type TcpRelay } from './tcp-relay.js'

/** the server's maintenance database, from which test databases are created and dropped */
export const PG_ADMIN_URL = process.env.PROXY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL })
  await client.connect().catch((err: unknown) => {
    throw new Error(
      `These tests need PostgreSQL at ${PG_ADMIN_URL} (trust auth for user postgres), and it did not answer: ${err instanceof Error ? err.message : String(err)}. ` +
        'Start one (.ci/run does when none answers), or point PROXY_TEST_PG_URL at one.',
    )
  })
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `proxy_test_${process.pid}_${randomBytes(4).toString('hex')}`
  await admin((c) => c.query(`CREATE DATABASE ${name}`))
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    // FORCE: a server under test may still hold connections (its LISTEN client) when the test ends
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  }
}

/** The two store backends, for `describe.each`: SQLite in the data dir, and PostgreSQL. */
export const STORE_BACKENDS = ['sqlite', 'postgres'] as const
export type StoreBackend = (typeof STORE_BACKENDS)[number]

/**
 * One database per data dir, made on first use: lets a suite written for a data dir per `describe` (the
 * CLI's) run on PostgreSQL by adding PROXY_DATABASE_URL to each command's environment.
 */
export function databasesPerDir(backend: StoreBackend): { env(dir: string): Promise<Record<string, string>>; dropAll(): Promise<void> } {
  const made = new Map<string, Promise<TestDatabase>>()
  return {
    async env(dir): Promise<Record<string, string>> {
      if (backend === 'sqlite') return {}
      let db = made.get(dir)
      if (!db) made.set(dir, (db = createTestDatabase()))
      return { PROXY_DATABASE_URL: (await db).url }
    },
    async dropAll() {
      for (const db of made.values()) await (await db).drop()
      made.clear()
    },
  }
}

/** A store on the given backend (a fresh database for PostgreSQL) in a temp data dir; close() removes both. */
export async function openBackendStore(backend: StoreBackend): Promise<{ store: Store; dataDir: string; databaseUrl: string | null; close(): Promise<void> }> {
  const data = tempDataDir()
  const database = backend === 'postgres' ? await createTestDatabase() : null
  const store = await openStore({ dataDir: data.dir, databaseUrl: database?.url, env: testEnv(data.dir), keychain: null })
  return {
    store,
    dataDir: data.dir,
    databaseUrl: database?.url ?? null,
    async close() {
      await store.close()
      await database?.drop()
      data.cleanup()
    },
  }
}

/**
 * A PostgreSQL store (a fresh database) reached through a TCP relay the test can cut: an outage as the
 * store's connections see it, without stopping the server. close() removes all of it.
 */
export async function openStoreBehindRelay(): Promise<{ store: PostgresStore; relay: TcpRelay; close(): Promise<void> }> {
  const database = await createTestDatabase()
  const relay = await startTcpRelay(Number(new URL(database.url).port || 5432))
  const viaRelay = new URL(database.url)
  viaRelay.port = String(relay.port)
  const data = tempDataDir()
  const store = await openStore({ dataDir: data.dir, databaseUrl: viaRelay.toString(), env: testEnv(data.dir), keychain: null })
  if (store.kind !== 'postgres') throw new Error('expected a PostgreSQL store')
  return {
    store,
    relay,
    async close() {
      await store.close()
      data.cleanup()
      await relay.close()
      await database.drop()
    },
  }
}
