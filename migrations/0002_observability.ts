import { sql, type Kysely } from 'kysely'

/**
 * Observability: the audit trail (one row per request), daily usage per client and model, and the
 * per-client content-capture switch. Frozen in time: Kysely<any>, never the app's schema types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').addColumn('capture', 'integer', (c) => c.notNull().defaultTo(0)).execute()

  await db.schema
    .createTable('audit')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    // not unique: a client may send its own x-request-id, and may reuse it
    .addColumn('request_id', 'text', (c) => c.notNull())
    // when the request arrived, ISO 8601 UTC with milliseconds (sorts as text)
    .addColumn('ts', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('client', 'text')
    .addColumn('ip', 'text')
    .addColumn('model', 'text')
    .addColumn('provider', 'text')
    .addColumn('upstream_model', 'text')
    .addColumn('key_label', 'text')
    .addColumn('stream', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('latency_ms', 'real', (c) => c.notNull())
    .addColumn('upstream_ms', 'real')
    .addColumn('ttft_ms', 'real')
    .addColumn('prompt_tokens', 'integer')
    .addColumn('completion_tokens', 'integer')
    .addColumn('total_tokens', 'integer')
    .addColumn('cost_usd', 'real')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // null with a single attempt; otherwise retry | key | provider | global (how the last attempt differs from the first)
    .addColumn('fallback', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    // only with content capture on (per client or globally), capped in size
    .addColumn('request_body', 'text')
    .addColumn('response_body', 'text')
    .execute()
  await db.schema.createIndex('audit_ts').on('audit').column('ts').execute()
  await db.schema.createIndex('audit_request_id').on('audit').column('request_id').execute()
  await db.schema.createIndex('audit_client_ts').on('audit').columns(['client', 'ts']).execute()
  await db.schema.createIndex('audit_model_ts').on('audit').columns(['model', 'ts']).execute()

  await db.schema
    .createTable('usage')
    // UTC day, YYYY-MM-DD
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('client', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('errors', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('prompt_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('completion_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cost_usd', 'real', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('usage_pk', ['day', 'client', 'model'])
    .execute()
  await sql`CREATE INDEX usage_client_day ON usage (client, day)`.execute(db)
  await sql`CREATE INDEX usage_model_day ON usage (model, day)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('usage').execute()
  await db.schema.dropTable('audit').execute()
  await db.schema.alterTable('clients').dropColumn('capture').execute()
}
