import type { Kysely } from 'kysely'

/**
 * Captured bodies kept in an object store (S3 or compatible) instead of the audit row (issue 19): the
 * row keeps the object's key and the body's size, or, when the store could not take it, why the body
 * was dropped. Rows with bodies inline leave all five empty.
 * Frozen in time: Kysely<any>, never the app's schema types.
 */
const COLUMNS = [
  ['request_body_key', 'text'],
  ['request_body_bytes', 'integer'],
  ['response_body_key', 'text'],
  ['response_body_bytes', 'integer'],
  // why bodies over the inline cap were not stored (e.g. 'error', 'timeout', 'unavailable', 'queue_full')
  ['capture_dropped', 'text'],
] as const

export async function up(db: Kysely<any>): Promise<void> {
  // one column per statement: SQLite adds one at a time
  for (const [name, type] of COLUMNS) await db.schema.alterTable('audit').addColumn(name, type).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const [name] of [...COLUMNS].reverse()) await db.schema.alterTable('audit').dropColumn(name).execute()
}
