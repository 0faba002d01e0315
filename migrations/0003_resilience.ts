import { sql, type Kysely } from 'kysely'

/**
 * Resilience state: key health (written behind by the server), circuit breaker states (written behind
 * by the server), operator circuit overrides (written by `proxy circuit`), and per-client policies.
 * Migrations are frozen in time: they use Kysely<any>, never the app's schema types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // 'ok' | 'invalid' (the upstream rejected the key with 401/403: out until rotated or re-enabled)
  await db.schema.alterTable('provider_keys').addColumn('health', 'text', (c) => c.notNull().defaultTo('ok')).execute()
  await db.schema.alterTable('provider_keys').addColumn('health_reason', 'text').execute()
  await db.schema.alterTable('provider_keys').addColumn('health_changed_at', 'text').execute()
  // set after an upstream 429: the key is skipped until then
  await db.schema.alterTable('provider_keys').addColumn('cooldown_until', 'text').execute()
  // bumped by `proxy keys enable`: a running server forgets what it knew about the key's health
  await db.schema.alterTable('provider_keys').addColumn('health_epoch', 'integer', (c) => c.notNull().defaultTo(0)).execute()

  await db.schema.alterTable('clients').addColumn('policy', 'text').execute()

  // scope: 'p:<provider id>' or 'k:<key id>'. Written only by the server.
  await db.schema
    .createTable('circuit_states')
    .addColumn('scope', 'text', (c) => c.primaryKey())
    .addColumn('provider_id', 'integer', (c) => c.notNull().references('providers.id').onDelete('cascade'))
    .addColumn('key_id', 'integer', (c) => c.references('provider_keys.id').onDelete('cascade'))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('open_until', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute()

  // Written only by `proxy circuit`. mode: 'open' | 'closed' | null (automatic); epoch bumps reset the breaker.
  await db.schema
    .createTable('circuit_overrides')
    .addColumn('scope', 'text', (c) => c.primaryKey())
    .addColumn('provider_id', 'integer', (c) => c.notNull().references('providers.id').onDelete('cascade'))
    .addColumn('key_id', 'integer', (c) => c.references('provider_keys.id').onDelete('cascade'))
    .addColumn('mode', 'text')
    .addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute()
  await sql`CREATE INDEX circuit_overrides_provider ON circuit_overrides (provider_id)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('circuit_overrides').execute()
  await db.schema.dropTable('circuit_states').execute()
  await db.schema.alterTable('clients').dropColumn('policy').execute()
  for (const column of ['health_epoch', 'cooldown_until', 'health_changed_at', 'health_reason', 'health']) {
    await db.schema.alterTable('provider_keys').dropColumn(column).execute()
  }
}
