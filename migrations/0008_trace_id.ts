import type { Kysely } from 'kysely'

/**
 * The audit row names the request's trace (issue 21): 32 hex digits when traces were on, else null, so
 * an operator goes from a row to the trace in the collector. Frozen in time: Kysely<any>.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').addColumn('trace_id', 'text').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').dropColumn('trace_id').execute()
}
