/**
 * The store writer on PostgreSQL (postgres-writer.js), in two places: in process for tools, tests and
 * as the fallback, and on the server's writer thread, so that encoding its rows costs the event loop
 * nothing (docs/performance.md). Both write the same statements, made here from the tables'
 * columns.
 */
import type { AuditSink, AuditSinkEvents } from './audit-sink.js'
import type { PostgresStore } from './db.js'
import { postgresWriter, VALUES_LIST, type PostgresStatements } from './postgres-writer.js'
import { auditCopySql } from './repos/audit.js'
import { USAGE_COLUMNS, usageUpsertSql } from './repos/usage.js'
import type { StoreHealth } from './store-health.js'
import { writerThreadSink } from './writer-thread.js'

export interface PostgresSinkOptions {
  events: AuditSinkEvents
  health?: StoreHealth
  /** commits at least this often (ms) while it holds something; default 100 */
  flushMs?: number
  /** and as soon as this many rows wait; default 1000 */
  batchRows?: number
  /** rows held while the database refuses writes; default 50 000 */
  maxBuffered?: number
  /** how long to wait before trying again after a failed commit; default 1000 ms */
  retryMs?: number
}

const STATEMENTS: PostgresStatements = {
  audit: auditCopySql(),
  usage: usageUpsertSql(VALUES_LIST),
  usageColumns: USAGE_COLUMNS,
}

/** The writer on the store's own pool, on this thread. */
export function postgresAuditSink(store: PostgresStore, opts: PostgresSinkOptions): AuditSink {
  return postgresWriter(store.pool, { ...opts, url: store.url, statements: STATEMENTS })
}

export interface PostgresThreadSinkOptions extends PostgresSinkOptions {
  /** told once when the thread fails and this thread's writer takes over, with how many rows the thread held */
  onFallback?: (reason: string, lost: number) => void
}

/**
 * The server's writer: the same writer on a thread, with a connection of its own. If the thread cannot
 * start or dies, the writer on the store's pool takes over (writer-thread.ts).
 */
export function postgresThreadSink(store: PostgresStore, opts: PostgresThreadSinkOptions): AuditSink {
  const { onFallback, ...writer } = opts
  const maxBuffered = opts.maxBuffered ?? 50_000
  return writerThreadSink({
    ...writer,
    store: { kind: 'postgres', url: store.url, statements: STATEMENTS, retryMs: opts.retryMs ?? 1000 },
    maxBuffered,
    // Through an outage the thread holds up to maxBuffered and drops the oldest beyond, as in process;
    // the bound here is only for a thread that cannot keep up with what it is handed.
    maxHandedOver: 2 * maxBuffered,
    fallback: postgresAuditSink(store, writer),
    onFallback,
  })
}
