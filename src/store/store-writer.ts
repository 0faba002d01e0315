/** Picks the store writer (audit rows, usage, write-behind statements) for the store's backend. */
import { inlineAuditSink, threadAuditSink, type AuditSink, type AuditSinkEvents } from './audit-sink.js'
import type { Store } from './db.js'
import { postgresAuditSink, postgresThreadSink } from './postgres-sink.js'
import type { StoreHealth } from './store-health.js'

export interface StoreWriterOptions {
  flushMs?: number
  health?: StoreHealth
  /** told when the writer thread fails and the main thread takes over */
  onFallback?: (reason: string, lost: number) => void
}

/** The server's writer: a thread of its own on either backend, falling back to the main thread. */
export function serverStoreWriter(store: Store, events: AuditSinkEvents, opts: StoreWriterOptions = {}): AuditSink {
  if (store.kind === 'postgres') return postgresThreadSink(store, { events, flushMs: opts.flushMs, health: opts.health, onFallback: opts.onFallback })
  return threadAuditSink({ file: store.file, events, flushMs: opts.flushMs, fallback: inlineAuditSink(store.sqlite, events), onFallback: opts.onFallback })
}

/** A writer without a thread of its own (tests, tools): on the shared SQLite connection, or PostgreSQL's pool. */
export function simpleStoreWriter(store: Store, events: AuditSinkEvents): AuditSink {
  return store.kind === 'postgres' ? postgresAuditSink(store, { events }) : inlineAuditSink(store.sqlite, events)
}
