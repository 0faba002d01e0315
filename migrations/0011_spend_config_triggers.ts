import { sql, type Kysely } from 'kysely'
import { countConfigChanges, isPostgres } from '../src/store/dialect.js'

/**
 * Prices, teams and budgets are configuration: a change reaches running servers as a change to the
 * tables of migration 0005 does, through the counter's triggers, whoever writes it (a repository, the
 * admin API or `proxy store copy`). Migration 0010 left the bump to each repository's writes.
 * Frozen in time: Kysely<any>.
 */
export const SPEND_CONFIG_TABLES = ['prices', 'teams', 'budgets'] as const

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of SPEND_CONFIG_TABLES) await countConfigChanges(db, table)
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of SPEND_CONFIG_TABLES) {
    if (isPostgres(db)) await sql.raw(`DROP TRIGGER IF EXISTS config_version_${table} ON ${table}`).execute(db)
    else for (const event of ['insert', 'update', 'delete']) await sql.raw(`DROP TRIGGER IF EXISTS config_version_${table}_${event}`).execute(db)
  }
}
