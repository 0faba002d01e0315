/**
 * The server's writes behind the request path (key health, quota usage, the audit trail) go through its
 * writer thread, so another process holding the store's write lock (a CLI command, a backup) never
 * stalls the event loop: requests keep being answered, and the writes land once the lock is free.
 */
import { SQLite } from '../../src/store/sqlite-driver.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { chat, startAlphaProxy, type AlphaProxy } from '../gateway/harness.js'
import { eventually, sqliteOf } from '../helpers/proxy.js'

describe('another connection holding the write lock', () => {
  let alpha: AlphaProxy
  beforeEach(async () => {
    alpha = await startAlphaProxy(['k1'], ['--daily-tokens', '1000000'])
  })
  afterEach(() => alpha.close())

  it('does not hold up requests; key health, quota usage and audit rows are written once it is free', async () => {
    const other = new SQLite(sqliteOf(alpha.proxy.store).file)
    const read = () => ({
      lastUsed: (other.prepare("SELECT last_used_at FROM provider_keys WHERE label = 'k1'").pluck().get() as string | null) ?? null,
      quota: (other.prepare("SELECT coalesce(sum(tokens), 0) FROM quota_usage WHERE period = 'day'").pluck().get() as number) ?? 0,
      audit: other.prepare('SELECT count(*) FROM audit').pluck().get() as number,
    })
    try {
      const before = read()
      // Longer than four of the server's half-second health and quota flushes; the server's shared
      // connection would wait up to its 5 s busy timeout for this lock, on the event loop.
      other.exec('BEGIN IMMEDIATE')
      const started = Date.now()
      let worst = 0
      let served = 0
      while (Date.now() - started < 2500) {
        const t0 = performance.now()
        const r = await chat(alpha.proxy.url, alpha.key, 'm')
        worst = Math.max(worst, performance.now() - t0)
        expect(r.status).toBe(200)
        served++
        await new Promise((r) => setTimeout(r, 50))
      }
      other.exec('ROLLBACK')
      expect(worst).toBeLessThan(1000)
      expect(served).toBeGreaterThan(10)
      // nothing could be committed meanwhile, and nothing was lost
      const after = await eventually(read, (v) => v.audit >= before.audit + served && v.quota > before.quota && v.lastUsed !== null, 5000)
      expect(Date.parse(after.lastUsed!)).toBeGreaterThanOrEqual(started)
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK')
      other.close()
    }
  })
})
