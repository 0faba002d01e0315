import { Migrator, sql, type Kysely } from 'kysely'
import { migrations } from '../../migrations/index.js'
import { tableExists } from './dialect.js'
import type { Database } from './schema.js'

export class StoreVersionError extends Error {}

/**
 * Applies pending migrations. A store that has migrations this build does not know was written by a
 * newer proxy: refuse it instead of guessing, since an older binary could corrupt data it does not understand.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const known = new Set(Object.keys(migrations))
  const applied = await appliedMigrations(db)
  const unknown = applied.filter((name) => !known.has(name))
  if (unknown.length > 0) {
    throw new StoreVersionError(
      `This store was written by a newer version of proxy (it has migration ${unknown.join(', ')}, which this version does not know). Upgrade proxy, or point --data-dir at another store.`,
    )
  }
  // Nothing pending, the usual case: the migrator would still introspect every table, most of what
  // opening the store costs a short CLI command (docs/performance.md).
  if ([...known].every((name) => applied.includes(name))) return []
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new StoreVersionError(`Migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`)
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}

export async function appliedMigrations(db: Kysely<Database>): Promise<string[]> {
  if (!(await tableExists(db, 'kysely_migration'))) return []
  const rows = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db)
  return rows.rows.map((r) => r.name)
}

export const latestMigration = (): string => Object.keys(migrations).sort().at(-1)!
