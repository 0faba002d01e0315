import { sql, type Kysely } from 'kysely'

/**
 * Spend control (issue 20): prices as data, teams, money budgets and the period totals they are checked
 * against. Money is stored as integer micro-dollars (1 USD = 1,000,000): budgets and spend are summed
 * and compared on every request, in SQLite, PostgreSQL and Redis (INCRBY, Lua), and integers add up
 * exactly everywhere while a REAL would drift and Redis counters would round. Prices stay REAL: they
 * are rates (USD per 1M tokens, often fractional such as 0.075) and only ever multiplied.
 * Frozen in time: Kysely<any>, never the app's schema types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('prices')
    .addColumn('model', 'text', (c) => c.notNull())
    // '' for every provider; a provider's name for that provider only (it wins over '')
    .addColumn('provider', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('input', 'real', (c) => c.notNull())
    .addColumn('output', 'real', (c) => c.notNull())
    .addColumn('cached_input', 'real')
    .addColumn('cache_write', 'real')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('prices_pk', ['model', 'provider'])
    .execute()

  await db.schema
    .createTable('teams')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('rpm', 'integer')
    .addColumn('tpm', 'integer')
    // JSON as clients.limits: [{"kind":"requests"|"tokens","limit":N,"window_s":S}]
    .addColumn('limits', 'text')
    .addColumn('daily_tokens', 'integer')
    .addColumn('monthly_tokens', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  // no foreign key: deleting a team must not fail on its clients (the CLI detaches them first)
  await db.schema.alterTable('clients').addColumn('team_id', 'integer').execute()

  await db.schema
    .createTable('budgets')
    // 'global' | 'client' | 'team' | 'provider'
    .addColumn('level', 'text', (c) => c.notNull())
    // the client's, team's or provider's id; 0 for global
    .addColumn('subject_id', 'integer', (c) => c.notNull())
    // 'day' | 'month' (UTC)
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('limit_micro', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('budgets_pk', ['level', 'subject_id', 'period'])
    .execute()

  await db.schema
    .createTable('period_totals')
    // what is counted: 'spend:global' | 'spend:client' | 'spend:team' | 'spend:provider' (micro-dollars), 'tokens:team' (tokens)
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'integer', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    // 'YYYY-MM-DD' or 'YYYY-MM' (UTC)
    .addColumn('period_key', 'text', (c) => c.notNull())
    .addColumn('amount', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('period_totals_pk', ['scope', 'subject_id', 'period', 'period_key'])
    .execute()
  await sql`CREATE INDEX period_totals_period ON period_totals (period, period_key)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('period_totals').execute()
  await db.schema.dropTable('budgets').execute()
  await db.schema.alterTable('clients').dropColumn('team_id').execute()
  await db.schema.dropTable('teams').execute()
  await db.schema.dropTable('prices').execute()
}
