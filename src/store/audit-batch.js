// @ts-check
/**
 * The one transaction both store writers commit a batch in: every audit row, the usage deltas, then the
 * server's other write-behind statements (key health, circuit states, quota usage) in the order they
 * were handed over. Plain JavaScript so the writer thread (sqlite-thread.js) can import it as well as
 * the inline sink.
 *
 * @typedef {import('better-sqlite3').Database} Database
 * @typedef {{ sql: string, parameters: readonly unknown[], skipOnConstraint?: boolean }} WriteStatement
 * @param {Database} db
 * @param {string} auditSql positional INSERT of one audit row
 * @param {string} usageSql named UPSERT of one usage delta
 * @param {() => void} [pause] called after every PAUSE_EVERY_ROWS rows (the writer thread sleeps briefly)
 * @returns {(rows: unknown[][], usage: Iterable<object>, writes?: Iterable<readonly WriteStatement[]>) => { refused: Refused[], changes: number[] }}
 *   the write groups that failed (by position), each undone on its own, and the rows each group changed
 *
 * @typedef {{ index: number, error: unknown }} Refused
 */
export function batchTransaction(db, auditSql, usageSql, pause) {
  const insert = db.prepare(auditSql)
  const upsert = db.prepare(usageSql)
  const run = statementRunner(db)
  // Nested in the batch, each group is a savepoint: a group that fails for another reason than the lock
  // (a bug, a schema the statements do not fit) is undone alone, and the audit rows still commit.
  const group = db.transaction((/** @type {readonly WriteStatement[]} */ list) => {
    let changed = 0
    for (const w of list) changed += run(w)
    return changed
  })
  return db.transaction((rows, usage, writes = []) => {
    for (let i = 0; i < rows.length; i++) {
      insert.run(rows[i])
      if (pause && i % PAUSE_EVERY_ROWS === PAUSE_EVERY_ROWS - 1) pause()
    }
    for (const u of usage) upsert.run(u)
    /** @type {Refused[]} */
    const refused = []
    /** @type {number[]} */
    const changes = []
    for (const list of writes) {
      try {
        changes.push(group(list))
      } catch (error) {
        if (isBusy(error)) throw error
        refused.push({ index: changes.length, error })
        changes.push(0)
      }
    }
    return { refused, changes }
  })
}

/** @param {unknown} err another connection holds the lock: worth trying again as it is */
function isBusy(err) {
  const code = sqliteCode(err)
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')
}

/** @param {unknown} err @returns {string} better-sqlite3's error code (SQLITE_BUSY, SQLITE_CONSTRAINT_FOREIGNKEY, …), or '' */
function sqliteCode(err) {
  const code = /** @type {{ code?: unknown } | null} */ (err)?.code
  return typeof code === 'string' ? code : ''
}

/** about 0.2–0.3 ms of inserts between two pauses */
const PAUSE_EVERY_ROWS = 32

/**
 * Runs write statements compiled elsewhere (Kysely on the main thread), each prepared once. A statement
 * marked `skipOnConstraint` that breaks a constraint (its key or provider was deleted meanwhile) is
 * skipped: SQLite undoes that one statement and the transaction goes on. Any other failure ends it.
 *
 * @param {Database} db
 * @returns {(w: WriteStatement) => number} the rows the statement changed
 */
function statementRunner(db) {
  /** @type {Map<string, import('better-sqlite3').Statement>} */
  const prepared = new Map()
  return (w) => {
    let statement = prepared.get(w.sql)
    if (!statement) {
      statement = db.prepare(w.sql)
      prepared.set(w.sql, statement)
    }
    try {
      return statement.run(/** @type {unknown[]} */ (w.parameters)).changes
    } catch (err) {
      if (!w.skipOnConstraint || !sqliteCode(err).startsWith('SQLITE_CONSTRAINT')) throw err
      return 0
    }
  }
}

/**
 * Adds a usage delta to the sum kept for its (day, client, model): what a writer holds while the store
 * refuses writes stays bounded, however long that lasts.
 *
 * @template {{ day: string, client: string, model: string, requests: number, errors: number, prompt_tokens: number, completion_tokens: number, cost_usd: number, cache_hits: number, saved_usd: number }} U
 * @param {Map<string, U>} usage
 * @param {U} u
 */
export function addUsageDelta(usage, u) {
  const key = `${u.day}\u0000${u.client}\u0000${u.model}`
  const sum = usage.get(key)
  if (!sum) {
    usage.set(key, { ...u })
    return
  }
  sum.requests += u.requests
  sum.errors += u.errors
  sum.prompt_tokens += u.prompt_tokens
  sum.completion_tokens += u.completion_tokens
  sum.cost_usd += u.cost_usd
  sum.cache_hits += u.cache_hits
  sum.saved_usd += u.saved_usd
}
