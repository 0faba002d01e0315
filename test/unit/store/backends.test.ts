/**
 * The store's two backends: the migrations make today's SQLite schema exactly, and a working schema on
 * PostgreSQL (once, when several instances start together); the configuration counter announces
 * changes there; connection errors say what to do; the batch writer commits on both.
 */
import { SQLite } from '../../../src/store/sqlite-driver.js'
import { Kysely, Migrator, sql } from 'kysely'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { migrations } from '../../../migrations/index.js'
import { openStore, type Store } from '../../../src/store/db.js'
import { ImmediateSqliteDialect, describeConnectionError, StoreConnectionError } from '../../../src/store/dialect.js'
import { appliedMigrations } from '../../../src/store/migrate.js'
import { simpleStoreWriter } from '../../../src/store/store-writer.js'
import { auditRowValues, type NewAuditRow } from '../../../src/store/repos/audit.js'
import { quotaUsageStatements } from '../../../src/store/repos/quotas.js'
import { queryUsage } from '../../../src/store/repos/usage.js'
import { createTestDatabase, openBackendStore, openStoreBehindRelay, STORE_BACKENDS, type TestDatabase } from '../../helpers/postgres.js'
import { cli, eventually, tempDataDir, testEnv } from '../../helpers/proxy.js'
import { createConfigSource } from '../../../src/store/config-source.js'
import { StoreHealth } from '../../../src/store/store-health.js'
import { postgresAuditSink } from '../../../src/store/postgres-sink.js'
import expectedSchema from './sqlite-schema-0006.json' with { type: 'json' }

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase()
  cleanups.push(() => db.drop())
  return db
}

describe('migrations on SQLite', () => {
  it('make exactly the schema the store had before PostgreSQL (sqlite_master of 0001-0006, recorded from the earlier code)', async () => {
    const data = tempDataDir()
    cleanups.push(data.cleanup)
    const file = `${data.dir}/proxy.db`
    const sqlite = new SQLite(file)
    const db = new Kysely<any>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) })
    const { error } = await new Migrator({ db, provider: { getMigrations: async () => migrations } }).migrateTo('0006_responses')
    expect(error).toBeUndefined()
    const rows = sqlite.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_%' ORDER BY type, name").all()
    await db.destroy()
    expect(rows).toEqual(expectedSchema.filter((r) => !r.name.startsWith('kysely_')))
  })
})

describe('migrations on PostgreSQL', () => {
  it('make 64-bit integers, auto-increment ids and double-precision reals', async () => {
    const { url } = await database()
    const data = tempDataDir()
    cleanups.push(data.cleanup)
    const store = await openStore({ dataDir: data.dir, databaseUrl: url, env: testEnv(data.dir), keychain: null })
    cleanups.push(() => store.close())
    expect(await appliedMigrations(store.db)).toEqual(Object.keys(migrations))
    const { rows } = await sql<{ table_name: string; column_name: string; data_type: string; column_default: string | null }>`
      SELECT table_name, column_name, data_type, column_default FROM information_schema.columns
      WHERE table_schema = 'public' AND (table_name, column_name) IN (('audit', 'id'), ('audit', 'cost_usd'), ('usage', 'prompt_tokens'), ('provider_keys', 'provider_id'))
      ORDER BY table_name, column_name`.execute(store.db)
    expect(rows.map((r) => [r.table_name, r.column_name, r.data_type])).toEqual([
      ['audit', 'cost_usd', 'double precision'],
      ['audit', 'id', 'bigint'],
      ['provider_keys', 'provider_id', 'bigint'],
      ['usage', 'prompt_tokens', 'bigint'],
    ])
    expect(rows.find((r) => r.column_name === 'id')?.column_default).toMatch(/nextval/)
  })

  it('run once when several instances open a fresh database at the same moment', async () => {
    const { url } = await database()
    const dirs = [tempDataDir(), tempDataDir(), tempDataDir()]
    for (const d of dirs) cleanups.push(d.cleanup)
    const stores = await Promise.all(dirs.map((d) => openStore({ dataDir: d.dir, databaseUrl: url, env: testEnv(d.dir), keychain: null })))
    for (const s of stores) cleanups.push(() => s.close())
    const { rows } = await sql<{ name: string; n: number }>`SELECT name, count(*) AS n FROM kysely_migration GROUP BY name ORDER BY name`.execute(stores[0]!.db)
    expect(rows).toEqual(Object.keys(migrations).map((name) => ({ name, n: 1 })))
    // and the master key check was written once, so every instance opens the same store
    expect(await stores[1]!.db.selectFrom('meta').select('key').where('key', '=', 'master_key_check').execute()).toHaveLength(1)
  })

  it('announce a configuration change with NOTIFY when it commits, with the new counter', async () => {
    const opened = await openBackendStore('postgres')
    cleanups.push(() => opened.close())
    const listener = new pg.Client({ connectionString: opened.databaseUrl! })
    await listener.connect()
    cleanups.push(() => listener.end())
    const heard: string[] = []
    listener.on('notification', (n) => heard.push(`${n.channel}:${n.payload}`))
    await listener.query('LISTEN proxy_config')
    const before = await sql<{ version: number }>`SELECT version FROM config_version`.execute(opened.store.db)
    await opened.store.db.transaction().execute(async (tx) => {
      await tx.insertInto('providers').values({ name: 'p', type: 'mock', base_url: null, settings: '{}', enabled: 1, created_at: 'now', updated_at: 'now' }).execute()
      await new Promise((r) => setTimeout(r, 100))
      expect(heard).toEqual([])
    })
    // key health is the server's own bookkeeping: no announcement
    await sql`UPDATE provider_keys SET failure_count = failure_count + 1`.execute(opened.store.db)
    await new Promise((r) => setTimeout(r, 200))
    expect(heard).toEqual([`proxy_config:${Number(before.rows[0]!.version) + 1}`])
  })
})

describe('the config source on PostgreSQL', () => {
  it('reloads when another process commits a change, and catches a change made while its LISTEN connection was lost', async () => {
    const opened = await openBackendStore('postgres')
    cleanups.push(() => opened.close())
    const health = new StoreHealth()
    let reloads = 0
    const source = await createConfigSource(opened.store, { onReload: () => reloads++, health })
    cleanups.push(() => source.close())
    const env = { PROXY_DATABASE_URL: opened.databaseUrl! }
    // the LISTEN connection is made in the background
    await eventually(() => listeners(opened.databaseUrl!), (n) => n === 1)

    expect((await cli(opened.dataDir, ['providers', 'add', 'one', '--type', 'mock'], { env })).code).toBe(0)
    await eventually(() => source.current().providers.has('one'), Boolean, 2000)
    expect(reloads).toBe(1)

    // the listening backend goes away; a change is made before it is back
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`, opened.databaseUrl!)
    await eventually(() => health.ok, (ok) => !ok, 2000)
    expect((await cli(opened.dataDir, ['providers', 'add', 'two', '--type', 'mock'], { env })).code).toBe(0)
    await eventually(() => source.current().providers.has('two'), Boolean, 5000)
    await eventually(() => health.ok, Boolean, 5000)
    expect(await listeners(opened.databaseUrl!)).toBe(1)
  })
})

async function admin(query: string, url: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(query)
  } finally {
    await client.end()
  }
}

const listeners = async (url: string) => Number((await admin(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`, url)).rows[0].n)

describe('connection errors', () => {
  const open = (url: string) => {
    const data = tempDataDir()
    cleanups.push(data.cleanup)
    return openStore({ dataDir: data.dir, databaseUrl: url, env: testEnv(data.dir), keychain: null })
  }

  it('name a missing database, an unreachable server and TLS the server does not speak, on one line, without the password', async () => {
    const missing = await open('postgres://postgres:hunter2-secret@127.0.0.1:5432/proxy_no_such_db').catch((e) => e)
    expect(missing).toBeInstanceOf(StoreConnectionError)
    expect(missing.message).toMatch(/no database 'proxy_no_such_db'.*createdb/)
    const unreachable = await open('postgres://postgres:hunter2-secret@127.0.0.1:1/x').catch((e) => e)
    expect(unreachable.message).toMatch(/Cannot reach PostgreSQL at 127\.0\.0\.1:1 \(ECONNREFUSED\)/)
    const tls = await open('postgres://postgres:hunter2-secret@127.0.0.1:5432/postgres?sslmode=require').catch((e) => e)
    expect(tls.message).toMatch(/does not accept TLS/)
    for (const e of [missing, unreachable, tls]) {
      expect(e.message).not.toContain('hunter2')
      expect(e.message).not.toContain('\n')
    }
  })

  it('end a CLI command or proxy serve with that one line and a non-zero exit', async () => {
    const data = tempDataDir()
    cleanups.push(data.cleanup)
    for (const args of [
      ['keys', 'ls', '--database-url', 'postgres://postgres:hunter2-secret@127.0.0.1:1/proxy'],
      ['serve', '--port', '0', '--database-url', 'postgres://postgres:hunter2-secret@127.0.0.1:5432/proxy_no_such_db'],
      ['usage', '--database-url', 'mysql://root:hunter2-secret@127.0.0.1/proxy'],
    ]) {
      const r = await cli(data.dir, args)
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1)
      expect(r.stderr).toMatch(/Cannot reach PostgreSQL|no database 'proxy_no_such_db'|must be a postgres:\/\//)
      expect(r.stderr).not.toContain('hunter2')
    }
  })

  it('name a wrong password and a server that requires TLS (errors as the server sends them)', () => {
    const url = 'postgres://app:hunter2-secret@db.internal:5433/proxy'
    const password = describeConnectionError(Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' }), url)
    expect(password).toMatch(/refused the password for user 'app'/)
    const tls = describeConnectionError(Object.assign(new Error('no pg_hba.conf entry for host "10.0.0.2", user "app", database "proxy", no encryption'), { code: '28000' }), url)
    expect(tls).toMatch(/requires TLS.*sslmode=require/)
    for (const m of [password, tls]) expect(m).not.toContain('hunter2')
  })
})

const row = (n: number, over: Partial<NewAuditRow> = {}): unknown[] =>
  auditRowValues({
    request_id: `req-${n}`, ts: new Date(Date.UTC(2026, 11, 7, 0, 0, n)).toISOString(), method: 'POST', path: '/v1/chat/completions', client: 'app', ip: '127.0.0.1',
    model: 'm', provider: 'mock', upstream_model: 'm', key_label: 'k', stream: 0, status: 200, latency_ms: 1.5, upstream_ms: 1, ttft_ms: null,
    prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: 0.25, attempts: 1, fallback: null, error_code: null, error_message: null,
    request_body: null, response_body: null, cache: null, saved_usd: null, request_body_key: null, request_body_bytes: null, response_body_key: null, response_body_bytes: null, capture_dropped: null, trace_id: null, ...over,
  })

describe.each(STORE_BACKENDS)('the batch writer on %s', (backend) => {
  let store: Store
  const opened = async () => {
    const o = await openBackendStore(backend)
    cleanups.push(() => o.close())
    store = o.store
    const sink = simpleStoreWriter(store, { flushed: () => {}, dropped: () => {} })
    cleanups.push(async () => void (await sink.close()))
    return sink
  }

  it('commits audit rows, summed usage deltas and statements in one go', async () => {
    const sink = await opened()
    const usage = { day: '2026-12-07', client: 'app', model: 'm', requests: 1, errors: 0, prompt_tokens: 3, completion_tokens: 4, cost_usd: 0.25, cache_hits: 0, saved_usd: 0 }
    await sink.write(Array.from({ length: 1500 }, (_, i) => row(i)), [usage, usage])
    await sink.write([], [{ ...usage, errors: 1 }])
    const quota = sink.apply(quotaUsageStatements(store.db, [{ clientId: 1, period: 'day', periodKey: '2026-12-07', tokens: 10 }]))
    const again = sink.apply(quotaUsageStatements(store.db, [{ clientId: 1, period: 'day', periodKey: '2026-12-07', tokens: 5 }]))
    await sink.flush()
    expect(await quota).toBe(1)
    expect(await again).toBe(1)
    expect(await store.db.selectFrom('audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst()).toEqual({ n: 1500 })
    expect(await queryUsage(store.db, { by: 'client' })).toEqual([{ key: 'app', requests: 3, errors: 1, promptTokens: 9, completionTokens: 12, costUsd: 0.75, cacheHits: 0, savedUsd: 0 }])
    expect(await store.db.selectFrom('quota_usage').select('tokens').executeTakeFirst()).toEqual({ tokens: 15 })
  })

  it('undoes a group of statements the schema refuses alone, and still commits the rest', async () => {
    const sink = await opened()
    const bad = sink.apply([{ sql: 'INSERT INTO no_such_table VALUES (1)', parameters: [] }])
    await sink.write([row(1)], [])
    await sink.flush()
    await expect(bad).rejects.toThrow(/no_such_table/)
    expect(await store.db.selectFrom('audit').select('request_id').execute()).toEqual([{ request_id: 'req-1' }])
  })
})

describe('the PostgreSQL writer while the database is unreachable', () => {
  it('holds rows up to its bound, drops the oldest past it, keeps every usage delta, and writes them once it is back', async () => {
    const { store, relay, close } = await openStoreBehindRelay()
    cleanups.push(close)
    let dropped = 0
    const failures: string[] = []
    const health = new StoreHealth()
    const sink = postgresAuditSink(store, { events: { flushed: (ok, _s, error) => !ok && failures.push(error ?? ''), dropped: (n) => (dropped += n) }, maxBuffered: 5, retryMs: 50, health })
    cleanups.push(async () => void (await sink.close()))

    relay.cut()
    const usage = { day: '2026-12-07', client: 'app', model: 'm', requests: 1, errors: 0, prompt_tokens: 3, completion_tokens: 4, cost_usd: 0.25, cache_hits: 0, saved_usd: 0 }
    for (let i = 0; i < 8; i++) await sink.write([row(i)], [usage])
    expect(await sink.flush()).toBe(0)
    expect(dropped).toBe(3)
    expect(sink.buffered).toBe(5)
    expect(health.ok).toBe(false)
    expect(failures.at(-1)).not.toContain('\n')

    relay.restore()
    await eventually(() => sink.flush(), () => sink.buffered === 0, 10_000)
    expect(health.ok).toBe(true)
    expect((await store.db.selectFrom('audit').select('request_id').orderBy('id').execute()).map((r) => r.request_id)).toEqual(['req-3', 'req-4', 'req-5', 'req-6', 'req-7'])
    expect(await queryUsage(store.db, { by: 'client' })).toEqual([{ key: 'app', requests: 8, errors: 0, promptTokens: 24, completionTokens: 32, costUsd: 2, cacheHits: 0, savedUsd: 0 }])
  })
})
