import { sql, type Kysely } from 'kysely'
import { CONFIG_CHANNEL, isPostgres } from '../dialect.js'
import type { Database } from '../schema.js'

/**
 * Tells running servers that the configuration changed (they watch this counter, migration 0005), for
 * a change the configuration tables' triggers do not see: a setting kept in `meta`. On PostgreSQL the
 * same transaction also NOTIFYs, as those triggers do, so every server LISTENing reloads when it commits.
 */
export async function bumpConfigVersion(db: Kysely<Database>): Promise<void> {
  const bumped = await db
    .updateTable('config_version')
    .set((eb) => ({ version: eb('version', '+', 1) }))
    .where('id', '=', 1)
    .returning('version')
    .executeTakeFirst()
  if (bumped && isPostgres(db)) await sql`SELECT pg_notify(${CONFIG_CHANNEL}, ${String(bumped.version)})`.execute(db)
}
