import { writeStatement } from './write-statement.js'
import type { WriteStatement } from '../audit-batch.js'
import type { Kysely } from 'kysely'
import { notFound } from '../../core/errors.js'
import type { AuditRow, Database } from '../schema.js'
import { getClient } from './clients.js'

export type NewAuditRow = Omit<AuditRow, 'id'>

export const AUDIT_COLUMNS = [
  'request_id', 'ts', 'method', 'path', 'client', 'ip', 'model', 'provider', 'upstream_model', 'key_label', 'stream', 'status',
  'latency_ms', 'upstream_ms', 'ttft_ms', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost_usd', 'attempts', 'fallback',
  'error_code', 'error_message', 'request_body', 'response_body', 'cache', 'saved_usd', 'request_body_key', 'request_body_bytes',
  'response_body_key', 'response_body_bytes', 'capture_dropped', 'trace_id',
] as const satisfies ReadonlyArray<keyof NewAuditRow>

/** One audit row per statement run (SQLite's writer), positional parameters in AUDIT_COLUMNS order (see auditRowValues). */
export const AUDIT_INSERT_SQL = `INSERT INTO audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map(() => '?').join(', ')})`

/** Audit rows as COPY text (PostgreSQL's writer), columns in AUDIT_COLUMNS order. */
export function auditCopySql(): string {
  return `COPY audit (${AUDIT_COLUMNS.join(', ')}) FROM STDIN`
}

/**
 * A row as the positional parameters of AUDIT_INSERT_SQL: binding by position skips a name lookup per
 * column, and a flat array is what crosses to the writer thread most cheaply.
 */
export function auditRowValues(row: NewAuditRow): unknown[] {
  const values: unknown[] = new Array(AUDIT_COLUMNS.length)
  for (let i = 0; i < AUDIT_COLUMNS.length; i++) values[i] = row[AUDIT_COLUMNS[i]!]
  return values
}

/** Where a column's value sits in auditRowValues' array (for a change made after the row was built). */
export function auditValueIndex(column: (typeof AUDIT_COLUMNS)[number]): number {
  return AUDIT_COLUMNS.indexOf(column)
}

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

/**
 * Deletes audit rows older than `beforeIso`; returns how many. `inlineOnly` keeps the rows whose bodies
 * are in the capture store (their objects are deleted first, see capture-objects.ts).
 */
export async function pruneAudit(db: Kysely<Database>, beforeIso: string, opts: { inlineOnly?: boolean } = {}): Promise<number> {
  let q = db.deleteFrom('audit').where('ts', '<', beforeIso)
  if (opts.inlineOnly) q = q.where('request_body_key', 'is', null).where('response_body_key', 'is', null)
  const result = await q.executeTakeFirst()
  return Number(result.numDeletedRows)
}

/** Up to `limit` rows older than `beforeIso` whose bodies are in the capture store, oldest first: ids and object keys. */
export async function auditObjectsBefore(db: Kysely<Database>, beforeIso: string, limit: number): Promise<Array<{ id: number; keys: string[] }>> {
  const rows = await db
    .selectFrom('audit')
    .select(['id', 'request_body_key', 'response_body_key'])
    .where('ts', '<', beforeIso)
    .where((eb) => eb.or([eb('request_body_key', 'is not', null), eb('response_body_key', 'is not', null)]))
    .orderBy('ts')
    .limit(limit)
    .execute()
  return rows.map((r) => ({ id: r.id, keys: [r.request_body_key, r.response_body_key].filter((k): k is string => k !== null) }))
}

export async function deleteAuditRows(db: Kysely<Database>, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0
  const result = await db.deleteFrom('audit').where('id', 'in', ids).executeTakeFirst()
  return Number(result.numDeletedRows)
}

/** deleteAuditRows as a statement for the store writer */
export function deleteAuditRowsStatement(db: Kysely<Database>, ids: readonly number[]): WriteStatement {
  return writeStatement(db.deleteFrom('audit').where('id', 'in', [...ids]))
}

/**
 * Deletes at most `limit` rows older than `beforeIso` in one statement, for the server's automatic
 * retention, which hands it to the store writer: many small deletes never hold the write lock for long,
 * and none runs on the event loop.
 */
export function pruneAuditStatement(db: Kysely<Database>, beforeIso: string, limit: number, opts: { inlineOnly?: boolean } = {}): WriteStatement {
  let older = db.selectFrom('audit').select('id').where('ts', '<', beforeIso)
  if (opts.inlineOnly) older = older.where('request_body_key', 'is', null).where('response_body_key', 'is', null)
  return writeStatement(db.deleteFrom('audit').where('id', 'in', older.orderBy('ts').limit(limit)))
}

/** Turns content capture on or off for one client; running servers pick it up with the next reload. */
export async function setClientCapture(db: Kysely<Database>, name: string, on: boolean): Promise<void> {
  const client = await getClient(db, name)
  await db.updateTable('clients').set({ capture: on ? 1 : 0 }).where('id', '=', client.id).execute()
}
