import type BetterSqlite3 from 'better-sqlite3'
import { SQLite } from '../../../src/store/sqlite-driver.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { batchTransaction } from '../../../src/store/audit-batch.js'
import { openStore, type SqliteStore } from '../../../src/store/db.js'
import { tempDataDir, testEnv } from '../../helpers/proxy.js'

describe('store transactions', () => {
  let data: ReturnType<typeof tempDataDir>
  let store: SqliteStore
  let other: BetterSqlite3.Database

  beforeEach(async () => {
    data = tempDataDir()
    store = await openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })
    // another process's connection (a CLI, the audit thread) that does not wait for locks
    other = new SQLite(store.file, { timeout: 0 })
  })
  afterEach(async () => {
    other.close()
    await store.close()
    data.cleanup()
  })

  const otherWrites = (key: string) => other.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(key, 'v')

  it('take the write lock when they begin, so a read followed by a write never meets a commit in between', async () => {
    await store.db.transaction().execute(async (tx) => {
      await tx.selectFrom('meta').selectAll().execute()
      // Begun deferred, this commit would succeed and the insert below would fail with SQLITE_BUSY at once.
      expect(() => otherWrites('between')).toThrow(/database is locked|busy/i)
      await tx.insertInto('meta').values({ key: 'mine', value: 'v' }).execute()
    })
    const keys = (other.prepare("SELECT key FROM meta WHERE key IN ('mine', 'between')").all() as Array<{ key: string }>).map((r) => r.key)
    expect(keys).toEqual(['mine'])
  })

  it('leave writers alone when read only (a config snapshot)', async () => {
    await store.db.transaction().setAccessMode('read only').execute(async (tx) => {
      await tx.selectFrom('meta').selectAll().execute()
      otherWrites('during-read')
    })
    expect(other.prepare("SELECT count(*) AS n FROM meta WHERE key = 'during-read'").get()).toEqual({ n: 1 })
  })

  it('pause inside a large audit batch every 32 rows, and still commit it as one transaction', () => {
    other.exec('CREATE TABLE rows_t (n INTEGER)')
    let pauses = 0
    let seenByOthers = -1
    const reader = new SQLite(store.file, { readonly: true })
    try {
      const tx = batchTransaction(other, 'INSERT INTO rows_t (n) VALUES (?)', 'SELECT 1 WHERE :x = :x', () => {
        pauses++
        // what another connection sees while the writer pauses: nothing of this batch yet
        seenByOthers = Math.max(seenByOthers, reader.prepare('SELECT count(*) FROM rows_t').pluck().get() as number)
      })
      const rows = Array.from({ length: 100 }, (_, n) => [n])
      expect(tx(rows, [])).toEqual({ refused: [], changes: [] })
      expect(pauses).toBe(3)
      expect(seenByOthers).toBe(0)
      expect(reader.prepare('SELECT count(*) FROM rows_t').pluck().get()).toBe(100)
    } finally {
      reader.close()
    }
  })
})
