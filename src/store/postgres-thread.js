// @ts-check
/**
 * The writer thread's body on PostgreSQL (started by audit-thread.js): the same writer the CLI and the
 * fallback run in process (postgres-writer.js: batches by COPY, savepoint groups, buffering through an
 * outage), on a connection of its own. Encoding a batch costs CPU that on the server's event loop would
 * be time taken from requests (docs/performance.md).
 * Messages: see audit-thread.js.
 *
 * @typedef {import('./audit-thread.js').Message} Message
 * @typedef {{ url: string, statements: import('./postgres-writer.js').PostgresStatements, retryMs: number, flushMs: number, batchRows: number, maxBuffered: number }} Options
 */
import pg from 'pg'
import { parentPort, workerData } from 'node:worker_threads'
import { postgresPool } from './pg-connection.js'
import { postgresWriter } from './postgres-writer.js'

/** @type {Options} */
const options = workerData
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort)
// One connection: the writer commits one transaction at a time.
const pool = postgresPool(pg, options.url, 1)

/** what the server was last told: it hears of a change only, not of every commit */
let down = false
const writer = postgresWriter(pool, {
  url: options.url,
  statements: options.statements,
  flushMs: options.flushMs,
  batchRows: options.batchRows,
  maxBuffered: options.maxBuffered,
  retryMs: options.retryMs,
  events: {
    flushed: (ok, seconds, message, rows = 0) => port.postMessage({ flushed: { ok, seconds, rows, message } }),
    dropped: (rows) => port.postMessage({ dropped: rows }),
  },
  health: {
    up() {
      if (!down) return
      down = false
      port.postMessage({ health: null })
    },
    down(_part, reason) {
      down = true
      port.postMessage({ health: reason })
    },
  },
})

// Nothing to open before the first batch: an unreachable database is an outage the writer rides out.
port.postMessage({ ready: true })

port.on('message', (/** @type {Message} */ message) => {
  if (message === 'close') return void close()
  if ('sync' in message) {
    const answer = (/** @type {number} */ rows) => port.postMessage({ synced: message.sync, rows })
    writer.flush().then(answer, () => answer(0))
    return
  }
  if ('writes' in message) {
    writer.apply(message.writes).then(
      (changes) => port.postMessage({ applied: [[message.id, changes]] }),
      (err) => port.postMessage({ refused: [message.id], message: err instanceof Error ? err.message : String(err) }),
    )
    return
  }
  void writer.write(message.rows, message.usage)
})

/** Writes what is left (trying for up to two seconds while the database is away), then ends the thread. */
async function close() {
  const lost = await writer.close()
  port.postMessage({ closed: lost })
  await pool.end().catch(() => {})
  port.close()
}
