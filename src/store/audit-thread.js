// @ts-check
/**
 * The server's store writer thread (writer-thread.ts starts it): it lowers its own priority, then runs
 * the body for the store, sqlite-thread.js or postgres-thread.js. One script for both, so the single
 * executable carries one thread asset (build/sea/audit-thread-file.ts); each body loads its own driver,
 * so a SQLite store's thread never loads pg.
 *
 * Messages in:  { rows, usage } to write; { writes, id } statements to commit with the next batch;
 *               { sync: id } to commit now and answer; 'close'.
 * Messages out: { ready: true } once the store is open, { flushed: { ok, seconds, rows, message? } }
 *               after every attempt, { applied: [id, rows changed][] } once those statements are
 *               committed, { refused: ids, message } when they failed for another reason than a lock
 *               or an outage, { dropped: n }, { health: reason | null } when the store stops or starts
 *               answering (PostgreSQL), { synced: id, rows }, { closed: lost }.
 *
 * Plain JavaScript on purpose: a worker starts from a file Node runs as it is, both from dist/ and when
 * the tests run the TypeScript sources; `// @ts-check` keeps the compiler on it.
 *
 * @typedef {import('./repos/usage.js').UsageDelta} UsageDelta
 * @typedef {import('./audit-batch.js').WriteStatement} WriteStatement
 * @typedef {{ rows: unknown[][], usage: UsageDelta[] } | { writes: WriteStatement[], id: number } | { sync: number } | 'close'} Message
 */
import { readlinkSync, writeFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import { workerData } from 'node:worker_threads'

/** the thread's nice value (see lowerPriority) */
const NICE = 5

lowerPriority()
// No top-level await: the executable bundles this script as CommonJS. A body that fails to load is
// rethrown as the thread's uncaught error, and the server's side falls back to writing in process.
const body = workerData.kind === 'postgres' ? import('./postgres-thread.js') : import('./sqlite-thread.js')
body.catch((err) =>
  process.nextTick(() => {
    throw err
  }),
)

/**
 * On Linux a thread has its own nice value. Writing the audit trail can wait; answering requests cannot,
 * so when both want the same core the scheduler should pick the server's thread; nice 5 still leaves it
 * about a quarter of a busy core, enough to keep up where nice 10 fell behind (docs/performance.md).
 * Best effort: elsewhere, or without permission, the thread keeps the default priority. It is also
 * named, so `top -H` and /proc/PID/task tell its CPU apart from the server's.
 */
function lowerPriority() {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, NICE)
    writeFileSync('/proc/thread-self/comm', 'proxy-audit')
  } catch {
    // not Linux, or not allowed: run at normal priority
  }
}
