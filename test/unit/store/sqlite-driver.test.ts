import { describe, expect, it } from 'vitest'
import { SQLite, SQLITE_NAPI_PACKAGE, sqlitePackage } from '../../../src/store/sqlite-driver.js'

describe('which better-sqlite3 the store loads', () => {
  const installed = () => true
  const missing = () => false

  it('is 13 (N-API) on node 22 and later when npm installed it, else 12', () => {
    expect(sqlitePackage('24.21.0', installed)).toBe(SQLITE_NAPI_PACKAGE)
    expect(sqlitePackage('22.12.0', installed)).toBe(SQLITE_NAPI_PACKAGE)
    expect(sqlitePackage('20.20.2', installed)).toBe('better-sqlite3')
    expect(sqlitePackage('24.21.0', missing)).toBe('better-sqlite3')
  })

  it('loads the one this node gets, and it opens a database', () => {
    const major = Number(process.versions.node.split('.')[0])
    // npm skips the optional 13 on node 20 (its engines say >=22)
    expect(sqlitePackage()).toBe(major >= 22 ? SQLITE_NAPI_PACKAGE : 'better-sqlite3')
    const db = new SQLite(':memory:')
    expect(db.prepare('SELECT 1 + 1 AS n').get()).toEqual({ n: 2 })
    db.close()
  })
})
