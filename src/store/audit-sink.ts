/**
 * Where the audit writer's batches go, and with them everything else the server writes behind (key
 * health, circuit states, quota usage). On SQLite the server hands them to a thread of their own
 * (writer-thread.ts, sqlite-thread.js) with its own connection, which gathers them into large
 * transactions, so inserts, commits, waits for the write lock and WAL checkpoints never stall requests
 * (on the main thread they were the largest cause of the one-connection p99: docs/performance.md). The
 * inline sink writes on the shared connection: for tools and tests, and as the fallback when the thread
 * cannot start or dies. PostgreSQL's writers are in postgres-sink.ts.
 */
import type SQLite from 'better-sqlite3'
import { batchTransaction, type WriteStatement } from './audit-batch.js'
import { AUDIT_INSERT_SQL } from './repos/audit.js'
import { USAGE_UPSERT_SQL, type UsageDelta } from './repos/usage.js'
import { writerThreadSink, type WriterThreadOptions } from './writer-thread.js'

/** What a sink reports, for metrics and logs. */
export interface AuditSinkEvents {
  /** after every transaction tried, whether it committed */
  flushed(ok: boolean, seconds: number, error?: string): void
  /** rows given up because the store refused writes for too long */
  dropped(rows: number): void
}

export interface AuditSink {
  /**
   * Takes audit rows (positional, see auditRowValues) and usage deltas. Resolves to how many rows were
   * committed by this call (the thread commits later: 0); rejects when they were not taken and must be
   * offered again.
   */
  write(rows: unknown[][], usage: UsageDelta[]): Promise<number>
  /**
   * Commits the statements (compiled on this side) with the next batch, in the order handed over;
   * resolves with the rows they changed once they are committed, rejects when they were not (they are
   * the caller's to retry).
   */
  apply(writes: WriteStatement[]): Promise<number>
  /** Commits what the sink holds now; resolves to how many rows that wrote. */
  flush(): Promise<number>
  /** rows taken and not yet committed */
  readonly buffered: number
  /** Writes what it still holds, then releases the connection or thread; resolves to rows lost. */
  close(): Promise<number>
}

/** How long a transaction waits for another process's write lock before it fails and is retried later. */
const BATCH_BUSY_TIMEOUT_MS = 100

export function inlineAuditSink(sqlite: SQLite.Database, events: AuditSinkEvents): AuditSink {
  let tx: ReturnType<typeof batchTransaction> | null = null
  const commit = (rows: unknown[][], usage: UsageDelta[], writes?: WriteStatement[]): number => {
    // Another (async) transaction is open on the shared connection (a config reload): try again later.
    if (!sqlite.open || sqlite.inTransaction) throw new Error('the store connection is busy')
    tx ??= batchTransaction(sqlite, AUDIT_INSERT_SQL, USAGE_UPSERT_SQL)
    // The shared connection waits up to its busy_timeout (seconds) for a lock; a batch waits only
    // briefly, so a busy store never stalls the server.
    const previous = sqlite.pragma('busy_timeout', { simple: true }) as number
    sqlite.pragma(`busy_timeout = ${BATCH_BUSY_TIMEOUT_MS}`)
    try {
      const { refused, changes } = tx(rows, usage, writes ? [writes] : [])
      if (refused[0]) throw refused[0].error
      return changes[0] ?? 0
    } finally {
      sqlite.pragma(`busy_timeout = ${previous}`)
    }
  }
  return {
    async write(rows, usage) {
      const started = performance.now()
      try {
        commit(rows, usage)
      } catch (err) {
        events.flushed(false, 0, err instanceof Error ? err.message : String(err))
        throw err
      }
      events.flushed(true, (performance.now() - started) / 1000)
      return rows.length
    },
    async apply(writes) {
      return commit([], [], writes)
    },
    flush: async () => 0,
    buffered: 0,
    close: async () => 0,
  }
}

export interface ThreadAuditSinkOptions extends Omit<WriterThreadOptions, 'store' | 'health' | 'maxHandedOver'> {
  /** the store file the thread opens */
  file: string
}

/** The server's writer on SQLite: a thread with a second connection to the store file (sqlite-thread.js). */
export function threadAuditSink(opts: ThreadAuditSinkOptions): AuditSink {
  const { file, ...rest } = opts
  return writerThreadSink({ ...rest, store: { kind: 'sqlite', file, auditSql: AUDIT_INSERT_SQL, usageSql: USAGE_UPSERT_SQL, busyTimeoutMs: BATCH_BUSY_TIMEOUT_MS } })
}
