import { CompiledQuery, SqliteDialect, type DatabaseConnection, type Driver, type TransactionSettings } from 'kysely'

/**
 * Kysely's SQLite dialect, with write transactions begun IMMEDIATE. A deferred transaction that reads
 * and then writes cannot wait for the lock: if another connection (the server's audit thread, another
 * CLI) commits between its read and its first write, SQLite answers SQLITE_BUSY at once, whatever the
 * busy timeout. Taking the write lock at BEGIN makes it wait like any other write. Transactions marked
 * `setAccessMode('read only')` (a config snapshot) stay deferred and never hold up writers.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver()
    const begin = CompiledQuery.raw('begin immediate')
    const beginDeferred = driver.beginTransaction.bind(driver)
    driver.beginTransaction = async (connection: DatabaseConnection, settings: TransactionSettings) => {
      if (settings.accessMode === 'read only') return beginDeferred(connection, settings)
      await connection.executeQuery(begin)
    }
    return driver
  }
}
