// @ts-check
/**
 * The audit writer's own thread: a second SQLite connection to the store file that writes each batch of
 * audit rows and usage deltas in one transaction, so the B-tree inserts, commits and WAL checkpoints
 * never hold the server's event loop. See audit-sink.ts for the other side.
 *
 * Plain JavaScript on purpose: a worker starts from a file Node runs as it is, both from dist/ and when
 * the tests run the TypeScript sources; `// @ts-check` keeps the compiler on it.
 */
import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import SQLite from 'better-sqlite3'

/** @type {{ file: string, auditSql: string, usageSql: string, busyTimeoutMs: number }} */
const options = workerData
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort)

lowerPriority()

const db = new SQLite(options.file)
// Per-connection settings (WAL is a property of the file and already on). A locked store fails the batch
// quickly; the writer keeps the rows and retries.
db.pragma(`busy_timeout = ${options.busyTimeoutMs}`)
db.pragma('synchronous = NORMAL')
const insert = db.prepare(options.auditSql)
const upsert = db.prepare(options.usageSql)
const write = db.transaction(
  /** @param {unknown[][]} rows @param {Record<string, unknown>[]} usage */
  (rows, usage) => {
    for (const row of rows) insert.run(row)
    for (const u of usage) upsert.run(u)
  },
)

port.on('message', (/** @type {{ id: number, rows: unknown[][], usage: Record<string, unknown>[] } | 'close'} */ batch) => {
  if (batch === 'close') {
    // Everything sent before has been written (messages arrive in order): close the connection cleanly
    // and let the thread end.
    db.close()
    port.close()
    return
  }
  try {
    write(batch.rows, batch.usage)
    port.postMessage({ id: batch.id, ok: true })
  } catch (err) {
    const e = /** @type {{ message?: string, code?: string }} */ (err)
    port.postMessage({ id: batch.id, ok: false, message: String(e?.message ?? err), code: e?.code ?? null })
  }
})

/**
 * On Linux a thread has its own nice value. Writing the audit trail can wait; answering requests cannot,
 * so when both want the same core the scheduler should pick the server's thread. Best effort: elsewhere,
 * or without permission, the thread keeps the default priority.
 */
function lowerPriority() {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 10)
  } catch {
    // not Linux, or not allowed: run at normal priority
  }
}
