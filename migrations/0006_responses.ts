import { sql, type Kysely } from 'kysely'

/**
 * Responses API objects the proxy keeps itself (issue 18). For a provider that serves /v1/responses
 * natively only the owner and where it was made are kept (`native` = 1: a continuation goes back to the
 * same provider and key); for a translated provider the input and output items too, so that
 * `previous_response_id` and GET /v1/responses/{id} work where the upstream has no such thing.
 * Frozen in time: Kysely<any>, never the app's schema types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('responses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'integer', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('key_label', 'text')
    .addColumn('native', 'integer', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('previous_id', 'text')
    // JSON: the input items of this turn alone (earlier turns are reached through previous_id)
    .addColumn('input', 'text')
    // JSON: the Response object as answered
    .addColumn('response', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute()
  await sql`CREATE INDEX responses_expires_at ON responses (expires_at)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('responses').execute()
}
