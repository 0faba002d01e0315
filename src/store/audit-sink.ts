/**
 * Where the audit writer's batches go. The server writes them on a thread of their own (audit-thread.js)
 * with its own connection, so inserts, commits and WAL checkpoints (a few ms each, sometimes tens) never
 * stall requests; measured on the benchmark they held the event loop about 1.2 ms per 64 rows and were
 * the largest cause of the one-connection p99. The inline sink writes on the shared connection: for
 * in-memory stores, and as the fallback when the thread cannot start or dies.
 */
import { Worker } from 'node:worker_threads'
import type SQLite from 'better-sqlite3'
import { AUDIT_INSERT_SQL } from './repos/audit.js'
import { USAGE_UPSERT_SQL, type UsageDelta } from './repos/usage.js'

export interface AuditSink {
  /** Writes audit rows (positional, see auditRowValues) and usage deltas in one transaction. */
  write(rows: unknown[][], usage: UsageDelta[]): Promise<void>
  /** Waits for what was sent, then releases the connection or thread. */
  close(): Promise<void>
}

/** How long a batch waits for another process's write lock before it fails and is retried later. */
const BATCH_BUSY_TIMEOUT_MS = 100

export function inlineAuditSink(sqlite: SQLite.Database): AuditSink {
  let tx: ((rows: unknown[][], usage: UsageDelta[]) => void) | null = null
  return {
    async write(rows, usage) {
      // Another (async) transaction is open on the shared connection (a config reload): try again later.
      if (!sqlite.open || sqlite.inTransaction) throw new Error('the store connection is busy')
      if (!tx) {
        const insert = sqlite.prepare(AUDIT_INSERT_SQL)
        const upsert = sqlite.prepare<[UsageDelta]>(USAGE_UPSERT_SQL)
        tx = sqlite.transaction((r: unknown[][], u: UsageDelta[]) => {
          for (const row of r) insert.run(row)
          for (const d of u) upsert.run(d)
        })
      }
      // The shared connection waits up to its busy_timeout (seconds) for a lock; a batch waits only
      // briefly, so a busy store never stalls the server.
      const previous = sqlite.pragma('busy_timeout', { simple: true }) as number
      sqlite.pragma(`busy_timeout = ${BATCH_BUSY_TIMEOUT_MS}`)
      try {
        tx(rows, usage)
      } finally {
        sqlite.pragma(`busy_timeout = ${previous}`)
      }
    },
    async close() {},
  }
}

interface Reply {
  id: number
  ok: boolean
  message?: string
  code?: string | null
}

export interface ThreadAuditSinkOptions {
  /** the store file the thread opens */
  file: string
  /** used from the moment the thread fails: it cannot start, crashes or exits */
  fallback: AuditSink
  /** told once when the fallback takes over */
  onFallback?: (reason: string) => void
}

/**
 * Batches go to the writer thread in order and are answered in order. The thread is unreferenced while
 * idle (it never keeps a finished process alive) and referenced while a batch is out, so a shutdown
 * that awaits its last batch is not cut short.
 */
export function threadAuditSink(opts: ThreadAuditSinkOptions): AuditSink {
  const waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()
  let nextId = 1
  let failed: string | null = null
  let worker: Worker | null
  let exited: Promise<void> = Promise.resolve()

  const fail = (reason: string) => {
    if (failed) return
    failed = reason
    worker = null
    opts.onFallback?.(reason)
    // Batches out when the thread died may or may not have committed; they are failed here and written
    // again through the fallback. A duplicate audit row is better than a lost one.
    for (const w of waiting.values()) w.reject(new Error(`audit thread failed: ${reason}`))
    waiting.clear()
  }

  try {
    worker = new Worker(new URL('./audit-thread.js', import.meta.url), {
      workerData: { file: opts.file, auditSql: AUDIT_INSERT_SQL, usageSql: USAGE_UPSERT_SQL, busyTimeoutMs: BATCH_BUSY_TIMEOUT_MS },
    })
    const w = worker
    w.unref()
    w.on('message', (reply: Reply) => {
      const pending = waiting.get(reply.id)
      if (!pending) return
      waiting.delete(reply.id)
      if (waiting.size === 0) w.unref()
      if (reply.ok) pending.resolve()
      else pending.reject(Object.assign(new Error(reply.message ?? 'audit write failed'), { code: reply.code ?? undefined }))
    })
    w.on('error', (err) => fail(err.message))
    exited = new Promise((resolve) =>
      w.once('exit', (code) => {
        fail(`exited with code ${code}`)
        resolve()
      }),
    )
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err))
  }

  return {
    write(rows, usage) {
      if (!worker) return opts.fallback.write(rows, usage)
      const id = nextId++
      const done = new Promise<void>((resolve, reject) => waiting.set(id, { resolve, reject }))
      worker.ref()
      worker.postMessage({ id, rows, usage })
      return done
    },
    async close() {
      if (worker) {
        // Not a failure from here on: the thread ends because it was asked to.
        failed = 'closed'
        worker.ref()
        worker.postMessage('close')
        worker = null
        await exited
      }
      await opts.fallback.close()
    },
  }
}
