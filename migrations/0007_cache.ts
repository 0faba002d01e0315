import type { Kysely } from 'kysely'

/**
 * The response cache in the audit trail and usage (issue 21): what the cache did for a request (hit, miss,
 * bypass; null where no cache policy applied) and, for a hit, the cost its answer had when it was made.
 * Usage counts hits and sums the cost they saved. Frozen in time: Kysely<any>, never the app's schema types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit').addColumn('cache', 'text').execute()
  await db.schema.alterTable('audit').addColumn('saved_usd', 'real').execute()
  await db.schema.alterTable('usage').addColumn('cache_hits', 'integer', (c) => c.notNull().defaultTo(0)).execute()
  await db.schema.alterTable('usage').addColumn('saved_usd', 'real', (c) => c.notNull().defaultTo(0)).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('usage').dropColumn('saved_usd').execute()
  await db.schema.alterTable('usage').dropColumn('cache_hits').execute()
  await db.schema.alterTable('audit').dropColumn('saved_usd').execute()
  await db.schema.alterTable('audit').dropColumn('cache').execute()
}
