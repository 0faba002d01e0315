import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'

/**
 * Tells running servers that the configuration changed (they poll this counter, migration 0005). Tables
 * of migration 0010 bump it here, in the writer's own statement, rather than through triggers, so the
 * same code runs on every store backend.
 */
export async function bumpConfigVersion(db: Kysely<Database>): Promise<void> {
  await db
    .updateTable('config_version')
    .set((eb) => ({ version: eb('version', '+', 1) }))
    .where('id', '=', 1)
    .execute()
}
