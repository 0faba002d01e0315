/**
 * `proxy store copy`: SQLite to PostgreSQL and back, every table, ids and encrypted secrets as they
 * were; a non-empty target is refused unless --force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openStore, type Store } from '../../src/store/db.js'
import { auditRowValues } from '../../src/store/repos/audit.js'
import { loadSnapshot } from '../../src/store/snapshot.js'
import { simpleStoreWriter } from '../../src/store/store-writer.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { cli, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'

const AUDIT_ROWS = 12_345

/** every row of every table, in a stable order, for comparing two stores */
async function contents(store: Store): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  for (const t of await store.db.introspection.getTables()) {
    if (t.name.startsWith('kysely_') || t.name === 'config_version') continue
    let q = store.db.selectFrom(t.name as 'meta').selectAll()
    for (const c of t.columns) q = q.orderBy(c.name as 'key')
    out[t.name] = await q.execute()
  }
  return out
}

describe('proxy store copy', () => {
  const source = tempDataDir()
  const back = tempDataDir()
  let database: TestDatabase
  let original: Record<string, unknown[]>

  beforeAll(async () => {
    database = await createTestDatabase()
    for (const [args, stdin] of [
      [['providers', 'add', 'openai', '--type', 'openai']],
      [['keys', 'add', 'openai', '--label', 'main'], 'sk-copy-secret-0123456789'],
      [['models', 'add', 'gpt-4o-mini', '--target', 'openai/gpt-4o-mini']],
      [['clients', 'add', 'app', '--daily-tokens', '1000']],
      [['circuit', 'open', 'openai']],
    ] as Array<[string[], string?]>) expect((await cli(source.dir, args, stdin ? { stdin } : {})).code).toBe(0)
    // enough audit rows for several pages and inserts, and usage
    const store = await openStore({ dataDir: source.dir, env: testEnv(source.dir), keychain: null })
    const writer = simpleStoreWriter(store, { flushed: () => {}, dropped: () => {} })
    const rows = Array.from({ length: AUDIT_ROWS }, (_, i) =>
      auditRowValues({
        request_id: `req-${i}`, ts: new Date(Date.UTC(2026, 11, 1) + i * 1000).toISOString(), method: 'POST', path: '/v1/chat/completions', client: 'app', ip: null,
        model: 'gpt-4o-mini', provider: 'openai', upstream_model: 'gpt-4o-mini', key_label: 'main', stream: i % 2, status: 200, latency_ms: 12.5, upstream_ms: 10.25, ttft_ms: null,
        prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: 0.000123, attempts: 1, fallback: null, error_code: null, error_message: null, request_body: null, response_body: null, cache: null, saved_usd: null, request_body_key: null, request_body_bytes: null, response_body_key: null, response_body_bytes: null, capture_dropped: null, trace_id: null,
      }),
    )
    await writer.write(rows, [{ day: '2026-12-01', client: 'app', model: 'gpt-4o-mini', requests: AUDIT_ROWS, errors: 0, prompt_tokens: 3 * AUDIT_ROWS, completion_tokens: 4 * AUDIT_ROWS, cost_usd: 1.5, cache_hits: 0, saved_usd: 0 }])
    await writer.close()
    original = await contents(store)
    await store.close()
  }, 60_000)

  afterAll(async () => {
    await database?.drop()
    source.cleanup()
    back.cleanup()
  })

  it('copies every table from SQLite to PostgreSQL, says what it copied, and the copy opens with the same master key', async () => {
    const res = await cli(source.dir, ['store', 'copy', '--from', source.dir, '--to', database.url])
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(new RegExp(`audit\\s+${AUDIT_ROWS}`))
    expect(res.stdout).toMatch(/provider_keys\s+1/)
    expect(res.stdout).toContain(`Copied ${Object.values(original).reduce((n, rows) => n + rows.length, 0)} row(s)`)

    const copy = await openStore({ dataDir: source.dir, databaseUrl: database.url, env: testEnv(source.dir), keychain: null })
    try {
      expect(await contents(copy)).toEqual(original)
      const snapshot = await loadSnapshot(copy)
      expect(snapshot.providers.get('openai')?.keys[0]?.secret).toBe('sk-copy-secret-0123456789')
      expect(snapshot.problems).toEqual([])
    } finally {
      await copy.close()
    }
    // new rows get fresh ids after the copied ones
    const added = await cli(source.dir, ['clients', 'add', 'second', '--json'], { env: { PROXY_DATABASE_URL: database.url } })
    expect(added.code).toBe(0)
    expect(JSON.parse(added.stdout).id).toBeGreaterThan((original.clients as Array<{ id: number }>)[0]!.id)
    expect(keyFrom(added.stdout)).toMatch(/^sk-proxy-/)
  })

  it('refuses a non-empty target unless --force, and changes nothing when it refuses', async () => {
    const refused = await cli(source.dir, ['store', 'copy', '--from', source.dir, '--to', database.url])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/is not empty \(.*clients 2.*\)\. Nothing was copied; pass --force/)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    const forced = await cli(source.dir, ['store', 'copy', '--from', source.dir, '--to', database.url, '--force', '--json'])
    expect(forced.code).toBe(0)
    expect(JSON.parse(forced.stdout).replaced).toBeGreaterThan(AUDIT_ROWS)
    const copy = await openStore({ dataDir: source.dir, databaseUrl: database.url, env: testEnv(source.dir), keychain: null })
    try {
      expect(await contents(copy)).toEqual(original)
    } finally {
      await copy.close()
    }
  })

  it('copies from PostgreSQL back to a new SQLite store, row for row', async () => {
    const res = await cli(back.dir, ['store', 'copy', '--from', database.url, '--to', back.dir])
    expect(res.code).toBe(0)
    const copy = await openStore({ dataDir: back.dir, env: testEnv(back.dir), keychain: null })
    try {
      expect(await contents(copy)).toEqual(original)
    } finally {
      await copy.close()
    }
  })
})
