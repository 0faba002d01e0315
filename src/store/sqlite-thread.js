// @ts-check
/**
 * The writer thread's body on SQLite (started by audit-thread.js): a second SQLite connection to the
 * store file. It gathers the audit rows the server sends, and the other state it writes behind (key
 * health, circuit states, quota usage, as compiled statements), and commits them in large transactions
 * (every `flushMs`, or once `batchRows` wait), so neither the inserts, the commits, the waits for the
 * write lock nor the WAL checkpoints run on the server's event loop. A commit costs about as much as a
 * few dozen rows (every touched index page goes to the WAL), so one transaction per thousand rows costs
 * a third less per row than one per 64. Messages: see audit-thread.js.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { SQLite } from './sqlite-driver.js'
import { addUsageDelta, batchTransaction } from './audit-batch.js'

/**
 * @typedef {{ file: string, auditSql: string, usageSql: string, busyTimeoutMs: number, flushMs: number, batchRows: number, maxBuffered: number }} Options
 * @typedef {import('./audit-thread.js').UsageDelta} UsageDelta
 * @typedef {import('./audit-thread.js').WriteStatement} WriteStatement
 * @typedef {import('./audit-thread.js').Message} Message
 */

/** @type {Options} */
const options = workerData
/** how long the thread sleeps between slices of a batch (see pause) */
const PAUSE_MS = 0.1
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort)

// Per-connection settings (WAL is a property of the file and already on). A locked store fails the
// transaction quickly; the rows stay here and the next tick tries again.
const db = new SQLite(options.file, { timeout: options.busyTimeoutMs })
db.pragma('synchronous = NORMAL')
// per connection, off by default: the handed-over statements rely on it (a circuit state of a deleted key)
db.pragma('foreign_keys = ON')
// This connection appends rows and updates a few others: the pages it revisits (the right edges of the
// audit table and its indexes, the B-tree interiors, the usage rows) fit in 2 MiB. better-sqlite3's
// default of 16 MiB filled up under load once the thread was the server's only writer (another
// connection's commits used to empty it): 16 MB more resident memory for nothing.
db.pragma('cache_size = -2048')
const transaction = batchTransaction(db, options.auditSql, options.usageSql, pause)

port.postMessage({ ready: true })

/** @type {unknown[][]} rows received, not yet committed, oldest first */
let rows = []
/** @type {Map<string, UsageDelta>} usage deltas received, summed per (day, client, model): bounded however long the store refuses writes */
let usage = new Map()
/** @type {Array<{ id: number, writes: WriteStatement[] }>} statements received, not yet committed, in order */
let writes = []
/** @type {NodeJS.Timeout | null} */
let timer = null

port.on('message', (/** @type {Message} */ message) => {
  if (message === 'close') return close()
  if ('sync' in message) {
    const n = commit()
    port.postMessage({ synced: message.sync, rows: n })
    return
  }
  if ('writes' in message) {
    writes.push({ id: message.id, writes: message.writes })
    timer ??= setTimeout(tick, options.flushMs)
    return
  }
  for (const row of message.rows) rows.push(row)
  for (const u of message.usage) addUsageDelta(usage, u)
  if (rows.length >= options.batchRows) commit()
  else timer ??= setTimeout(tick, options.flushMs)
})

function tick() {
  timer = null
  commit()
}

/** Commits everything waiting in one transaction; returns how many rows were written (0 on failure). */
function commit() {
  if (timer) clearTimeout(timer)
  timer = null
  if (rows.length === 0 && usage.size === 0 && writes.length === 0) return 0
  const started = performance.now()
  const n = rows.length
  try {
    const { refused, changes } = transaction(rows, usage.values(), writes.map((w) => w.writes))
    rows = []
    usage = new Map()
    if (writes.length > 0) {
      // Refused groups go back to their owners, who retry them on their own schedule.
      for (const r of refused) port.postMessage({ refused: [writes[r.index]?.id], message: errorMessage(r.error) })
      const failed = new Set(refused.map((r) => r.index))
      const applied = writes.flatMap((w, i) => (failed.has(i) ? [] : [[w.id, changes[i] ?? 0]]))
      port.postMessage({ applied })
    }
    writes = []
    port.postMessage({ flushed: { ok: true, seconds: (performance.now() - started) / 1000, rows: n } })
    return n
  } catch (err) {
    port.postMessage({ flushed: { ok: false, seconds: 0, rows: 0, message: errorMessage(err) } })
    if (rows.length > options.maxBuffered) {
      const dropped = rows.length - options.maxBuffered
      rows.splice(0, dropped)
      port.postMessage({ dropped })
    }
    timer = setTimeout(tick, options.flushMs)
    return 0
  }
}

/** Writes what is left, trying for up to two seconds while the store is locked; then ends the thread. */
async function close() {
  for (let tries = 0; (rows.length > 0 || usage.size > 0 || writes.length > 0) && tries < 200; tries++) {
    commit()
    if (rows.length > 0 || usage.size > 0 || writes.length > 0) await new Promise((r) => setTimeout(r, 10))
  }
  if (timer) clearTimeout(timer)
  port.postMessage({ closed: rows.length })
  db.close()
  port.close()
}

/**
 * Gives the core back for a moment in the middle of a large batch: on one core the scheduler lets a
 * thread run its whole slice, a few milliseconds, even at a lower priority, while requests wait
 * (docs/performance.md). The write lock stays held; only the CLI or another instance could want it.
 */
const nap = new Int32Array(new SharedArrayBuffer(4))
function pause() {
  Atomics.wait(nap, 0, 0, PAUSE_MS)
}

/** @param {unknown} err */
function errorMessage(err) {
  return err instanceof Error ? err.message : String(err)
}
