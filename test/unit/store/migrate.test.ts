import { SQLite } from '../../../src/store/sqlite-driver.js'
import { Kysely, Migrator, SqliteDialect } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { migrations } from '../../../migrations/index.js'
import { appliedMigrations, latestMigration, migrateToLatest } from '../../../src/store/migrate.js'
import type { Database } from '../../../src/store/schema.js'

describe('migrateToLatest', () => {
  let db: Kysely<Database> | undefined
  afterEach(async () => {
    await db?.destroy()
    db = undefined
  })

  it('applies what an older store lacks, and nothing once every migration is in', async () => {
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) })
    const names = Object.keys(migrations).sort()
    const older = Object.fromEntries(names.slice(0, -1).map((name) => [name, migrations[name]!]))
    const { error } = await new Migrator({ db, provider: { getMigrations: async () => older } }).migrateToLatest()
    expect(error).toBeUndefined()

    expect(await migrateToLatest(db)).toEqual([latestMigration()])
    expect(await appliedMigrations(db)).toEqual(names)
    expect(await migrateToLatest(db)).toEqual([])
    expect(await appliedMigrations(db)).toEqual(names)
  })
})
