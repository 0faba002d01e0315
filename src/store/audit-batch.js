// @ts-check
/**
 * The one transaction both audit sinks commit a batch in: every audit row, then the usage deltas. Plain
 * JavaScript so the audit thread (audit-thread.js) can import it as well as the inline sink.
 *
 * @typedef {import('better-sqlite3').Database} Database
 * @param {Database} db
 * @param {string} auditSql positional INSERT of one audit row
 * @param {string} usageSql named UPSERT of one usage delta
 * @returns {(rows: unknown[][], usage: Iterable<object>) => void}
 */
export function batchTransaction(db, auditSql, usageSql) {
  const insert = db.prepare(auditSql)
  const upsert = db.prepare(usageSql)
  return db.transaction((rows, usage) => {
    for (const row of rows) insert.run(row)
    for (const u of usage) upsert.run(u)
  })
}
