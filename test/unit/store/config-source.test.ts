import type BetterSqlite3 from 'better-sqlite3'
import { SQLite } from '../../../src/store/sqlite-driver.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { KEY_CONFIG_COLUMNS } from '../../../migrations/0005_config_version.js'
import { createConfigSource, type ConfigSource } from '../../../src/store/config-source.js'
import { openStore, type SqliteStore } from '../../../src/store/db.js'
import { cli, tempDataDir, testEnv } from '../../helpers/proxy.js'

/** provider_keys columns the server writes behind for itself (src/store/repos/key-health.ts) */
const KEY_HEALTH_COLUMNS = ['id', 'health', 'health_reason', 'health_changed_at', 'cooldown_until', 'failure_count', 'last_error', 'last_used_at']

describe('the config source', () => {
  let data: ReturnType<typeof tempDataDir>
  let store: SqliteStore
  let other: BetterSqlite3.Database
  let source: ConfigSource
  let reloads: number

  beforeEach(async () => {
    data = tempDataDir()
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'mock', '--label', 'k1'], { stdin: 'sk-one' })).code).toBe(0)
    store = await openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })
    // another connection, as the audit thread and the CLI have
    other = new SQLite(store.file)
    reloads = 0
    source = await createConfigSource(store, { pollMs: 10, onReload: () => reloads++ })
  })
  afterEach(async () => {
    source.close()
    other.close()
    await store.close()
    data.cleanup()
  })

  const settle = () => new Promise((r) => setTimeout(r, 80))

  it('does not reload for audit rows or key health written by another connection', async () => {
    const insert = other.prepare("INSERT INTO audit (request_id, ts, method, path, status, latency_ms) VALUES (?, '2026-03-01T00:00:00.000Z', 'POST', '/v1/chat/completions', 200, 1)")
    for (let i = 0; i < 5; i++) {
      insert.run(`r${i}`)
      await new Promise((r) => setTimeout(r, 15))
    }
    expect(other.prepare("UPDATE provider_keys SET health = 'invalid', failure_count = 3, last_error = 'x', last_used_at = '2026-03-01T00:00:00.000Z'").run().changes).toBe(1)
    await settle()
    expect(reloads).toBe(0)
  })

  it('reloads when the configuration changes: a model, a key re-enabled, an operator circuit override', async () => {
    expect((await cli(data.dir, ['models', 'add', 'm1', '--target', 'mock/mock-small'])).code).toBe(0)
    await settle()
    expect(reloads).toBe(1)
    expect(source.current().routes.has('m1')).toBe(true)

    expect(other.prepare('UPDATE provider_keys SET health_epoch = health_epoch + 1').run().changes).toBe(1)
    await settle()
    expect(reloads).toBe(2)

    expect((await cli(data.dir, ['circuit', 'open', 'mock'])).code).toBe(0)
    await settle()
    expect(reloads).toBe(3)
  })

  it("does not reload a second time for the server's own write once it has reloaded after it", async () => {
    // as the admin API does: a write on the server's connection, then reload()
    store.sqlite.prepare("UPDATE providers SET base_url = 'http://127.0.0.1:1/v1'").run()
    await source.reload()
    expect(reloads).toBe(1)
    other.prepare("INSERT INTO audit (request_id, ts, method, path, status, latency_ms) VALUES ('x', '2026-03-01T00:00:00.000Z', 'POST', '/v1/chat/completions', 200, 1)").run()
    await settle()
    expect(reloads).toBe(1)
  })

  it('knows every provider_keys column as configuration or as the server\'s own health bookkeeping', () => {
    // A new column must be put on one side: configuration (a trigger in a migration) or health.
    const columns = (store.sqlite.prepare('PRAGMA table_info(provider_keys)').all() as Array<{ name: string }>).map((c) => c.name).sort()
    expect(columns).toEqual([...KEY_CONFIG_COLUMNS, ...KEY_HEALTH_COLUMNS].sort())
  })
})
