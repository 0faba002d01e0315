import { sql, type Kysely } from 'kysely'

/**
 * Limits and quotas: sliding-window limits per client (a JSON list next to the older rpm/tpm columns),
 * and token usage per client and UTC day/month, written behind by the server so quotas survive restarts.
 * Frozen in time: Kysely<any>, never the app's schema types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // JSON: [{"kind":"requests"|"tokens","limit":N,"window_s":S}], or null for none
  await db.schema.alterTable('clients').addColumn('limits', 'text').execute()

  await db.schema
    .createTable('quota_usage')
    // no foreign key: usage is written behind, and must not fail because a client row changed meanwhile
    .addColumn('client_id', 'integer', (c) => c.notNull())
    // 'day' | 'month'
    .addColumn('period', 'text', (c) => c.notNull())
    // 'YYYY-MM-DD' for a day, 'YYYY-MM' for a month (UTC)
    .addColumn('period_key', 'text', (c) => c.notNull())
    .addColumn('tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('quota_usage_pk', ['client_id', 'period', 'period_key'])
    .execute()
  await sql`CREATE INDEX quota_usage_period ON quota_usage (period, period_key)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('quota_usage').execute()
  await db.schema.alterTable('clients').dropColumn('limits').execute()
}
