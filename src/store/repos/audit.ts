import type SQLite from 'better-sqlite3'
import type { Kysely } from 'kysely'
import { notFound } from '../../core/errors.js'
import type { AuditRow, Database } from '../schema.js'
import { getClient } from './clients.js'
import { upsertUsageStatement, type UsageDelta } from './usage.js'

export type NewAuditRow = Omit<AuditRow, 'id'>

const AUDIT_COLUMNS = [
  'request_id', 'ts', 'method', 'path', 'client', 'ip', 'model', 'provider', 'upstream_model', 'key_label', 'stream', 'status',
  'latency_ms', 'upstream_ms', 'ttft_ms', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost_usd', 'attempts', 'fallback',
  'error_code', 'error_message', 'request_body', 'response_body',
] as const satisfies ReadonlyArray<keyof NewAuditRow>

export interface AuditBatchWriter {
  /** writes audit rows and usage deltas in one transaction */
  write(rows: readonly NewAuditRow[], usage: Iterable<UsageDelta>): void
}

/**
 * The hot-path writer: prepared statements on the raw connection, one synchronous transaction per batch.
 * Synchronous on purpose: a batch commits within one turn of the event loop, so nothing interleaves.
 */
export function auditBatchWriter(sqlite: SQLite.Database): AuditBatchWriter {
  const insert = sqlite.prepare(`INSERT INTO audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map(() => '?').join(', ')})`)
  const upsert = upsertUsageStatement(sqlite)
  // Positional parameters from one reused array rather than by name (a lookup per column in the row
  // object); run() binds synchronously, so reusing the array is safe.
  const values: unknown[] = new Array(AUDIT_COLUMNS.length)
  const tx = sqlite.transaction((rows: readonly NewAuditRow[], usage: Iterable<UsageDelta>) => {
    for (const row of rows) {
      for (let i = 0; i < AUDIT_COLUMNS.length; i++) values[i] = row[AUDIT_COLUMNS[i]!]
      insert.run(values)
    }
    for (const u of usage) upsert.run(u)
  })
  return {
    write(rows, usage) {
      // The connection waits up to busy_timeout (seconds) for another process's write lock; a batch
      // waits only briefly and is retried on the next flush, so a busy store never stalls the server.
      const previous = sqlite.pragma('busy_timeout', { simple: true }) as number
      sqlite.pragma(`busy_timeout = ${BATCH_BUSY_TIMEOUT_MS}`)
      try {
        tx(rows, usage)
      } finally {
        sqlite.pragma(`busy_timeout = ${previous}`)
      }
    },
  }
}

const BATCH_BUSY_TIMEOUT_MS = 100

export interface AuditFilter {
  client?: string
  model?: string
  /** an exact status (200), a class ('5xx'), or 'error' (any status of 400 and above) */
  status?: string
  /** ISO time: only requests at or after it */
  since?: string
  limit?: number
}

export async function listAudit(db: Kysely<Database>, filter: AuditFilter = {}): Promise<AuditRow[]> {
  let q = db.selectFrom('audit').selectAll()
  if (filter.client) q = q.where('client', '=', filter.client)
  if (filter.model) q = q.where('model', '=', filter.model)
  if (filter.since) q = q.where('ts', '>=', filter.since)
  if (filter.status) {
    const s = filter.status.toLowerCase()
    const cls = /^([1-5])xx$/.exec(s)
    if (s === 'error') q = q.where('status', '>=', 400)
    else if (cls) q = q.where('status', '>=', Number(cls[1]) * 100).where('status', '<', Number(cls[1]) * 100 + 100)
    else q = q.where('status', '=', Number(s))
  }
  return q.orderBy('ts', 'desc').orderBy('id', 'desc').limit(filter.limit ?? 50).execute()
}

/** Every row with this request id (usually one; a client may reuse its own x-request-id). */
export async function getAudit(db: Kysely<Database>, requestId: string): Promise<AuditRow[]> {
  const rows = await db.selectFrom('audit').selectAll().where('request_id', '=', requestId).orderBy('id').execute()
  if (rows.length === 0) throw notFound(`No audit row for request '${requestId}'. List recent ones with 'proxy audit ls'.`)
  return rows
}

/** Deletes audit rows older than `beforeIso`; returns how many. */
export async function pruneAudit(db: Kysely<Database>, beforeIso: string): Promise<number> {
  const result = await db.deleteFrom('audit').where('ts', '<', beforeIso).executeTakeFirst()
  return Number(result.numDeletedRows)
}

/**
 * Deletes at most `limit` rows older than `beforeIso` in one short statement, for the server's automatic
 * retention: many small deletes never hold the write lock (or the event loop) for long.
 */
export function pruneAuditChunk(sqlite: SQLite.Database, beforeIso: string, limit = 2000): number {
  return sqlite.prepare('DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ? ORDER BY ts LIMIT ?)').run(beforeIso, limit).changes
}

/** Turns content capture on or off for one client; running servers pick it up with the next reload. */
export async function setClientCapture(db: Kysely<Database>, name: string, on: boolean): Promise<void> {
  const client = await getClient(db, name)
  await db.updateTable('clients').set({ capture: on ? 1 : 0 }).where('id', '=', client.id).execute()
}
