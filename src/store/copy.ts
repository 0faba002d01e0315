/**
 * `proxy store copy`: every table of one store into another, SQLite to PostgreSQL or back, in one
 * transaction on the target. Rows keep their ids (audit rows, keys and clients keep their references),
 * secrets stay encrypted as they are (the target is used with the same master key). Tables are
 * copied parents first, as their foreign keys say, so tables added by later migrations are copied too.
 */
import { closeSync, existsSync, openSync, statSync } from 'node:fs'
import path from 'node:path'
import { sql, type Kysely } from 'kysely'
import { continueIdSequence, isPostgres, isPostgresUrl, maxParameters, openDatabase, parentTables, redactUrl } from './dialect.js'
import { migrateToLatest } from './migrate.js'
import { STORE_FILE } from './paths.js'

/** The migrator's own tables, and the configuration counter, which the target's triggers keep. */
const NOT_COPIED = new Set(['kysely_migration', 'kysely_migration_lock', 'config_version'])
/** rows read from the source at a time (tables with an integer id are read in id order, page by page) */
const PAGE_ROWS = 5000

export class StoreCopyError extends Error {
  override name = 'StoreCopyError'
}

export interface CopyResult {
  from: string
  to: string
  tables: Array<{ table: string; rows: number }>
  /** rows deleted from the target first (--force) */
  replaced: number
}

/** A postgres:// URL, a store file, or a data directory (its proxy.db). */
export function resolveLocation(spec: string): { location: string; describe: string } {
  if (isPostgresUrl(spec)) return { location: spec, describe: redactUrl(spec) }
  const file = existsSync(spec) && statSync(spec).isDirectory() ? path.join(spec, STORE_FILE) : spec
  return { location: path.resolve(file), describe: path.resolve(file) }
}

export async function copyStore(fromSpec: string, toSpec: string, opts: { force?: boolean } = {}): Promise<CopyResult> {
  const from = resolveLocation(fromSpec)
  const to = resolveLocation(toSpec)
  if (from.location === to.location) throw new StoreCopyError('--from and --to name the same store.')
  if (!isPostgresUrl(from.location) && !existsSync(from.location)) throw new StoreCopyError(`There is no store at ${from.describe}.`)
  if (!isPostgresUrl(to.location) && !existsSync(to.location)) closeSync(openSync(to.location, 'a', 0o600))
  const source = await openDatabase<any>(from.location)
  try {
    const target = await openDatabase<any>(to.location)
    try {
      // Both at this build's schema: the source's columns are the target's.
      await migrateToLatest(source)
      await migrateToLatest(target)
      const tables = await copyOrder(source)
      // the source read as of one moment, while its servers may go on writing
      let reading = source.transaction().setAccessMode('read only')
      if (isPostgres(source)) reading = reading.setIsolationLevel('repeatable read')
      return await reading.execute((snapshot) => target.transaction().execute(async (tx) => {
        const counts = await Promise.all(tables.map(async (t) => ({ table: t, rows: await countRows(tx, t) })))
        const filled = counts.filter((c) => c.rows > 0)
        if (filled.length > 0 && !opts.force) {
          throw new StoreCopyError(
            `The target ${to.describe} is not empty (${filled.map((c) => `${c.table} ${c.rows}`).join(', ')}). Nothing was copied; pass --force to replace what it holds.`,
          )
        }
        // children first, so no foreign key is left dangling for a moment
        for (const t of [...tables].reverse()) await tx.deleteFrom(t).execute()
        const copied: CopyResult['tables'] = []
        for (const t of tables) {
          const columns = (await snapshot.introspection.getTables()).find((x) => x.name === t)!.columns.map((c) => c.name)
          copied.push({ table: t, rows: await copyTable(snapshot, tx, t, columns) })
          if (columns.includes('id')) await continueIdSequence(tx, t)
        }
        return { from: from.describe, to: to.describe, tables: copied, replaced: filled.reduce((n, c) => n + c.rows, 0) }
      }))
    } finally {
      await target.destroy()
    }
  } finally {
    await source.destroy()
  }
}

/** Every table of the store, parents before the tables that refer to them. */
async function copyOrder(db: Kysely<any>): Promise<string[]> {
  const names = (await db.introspection.getTables()).map((t) => t.name).filter((n) => !NOT_COPIED.has(n)).sort()
  const parents = new Map(await Promise.all(names.map(async (n) => [n, await parentTables(db, n)] as const)))
  const order: string[] = []
  const visit = (n: string, seen: Set<string>) => {
    if (order.includes(n) || seen.has(n)) return
    seen.add(n)
    for (const p of parents.get(n) ?? []) if (names.includes(p)) visit(p, seen)
    order.push(n)
  }
  for (const n of names) visit(n, new Set())
  return order
}

async function countRows(db: Kysely<any>, table: string): Promise<number> {
  const row = await db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}

async function copyTable(source: Kysely<any>, target: Kysely<any>, table: string, columns: string[]): Promise<number> {
  const byId = columns.includes('id') && table !== 'responses'
  const perInsert = Math.max(1, Math.floor(maxParameters(target) / columns.length))
  let copied = 0
  let after: unknown = null
  for (let offset = 0; ; offset += PAGE_ROWS) {
    let q = source.selectFrom(table).select(columns).limit(PAGE_ROWS)
    if (byId) {
      q = q.orderBy('id')
      if (after !== null) q = q.where('id', '>', after)
    } else {
      // every column: a total order (the primary key is among them), so pages neither skip nor repeat rows
      for (const c of columns) q = q.orderBy(c)
      q = q.offset(offset)
    }
    const rows = await q.execute()
    for (let i = 0; i < rows.length; i += perInsert) await target.insertInto(table).values(rows.slice(i, i + perInsert)).execute()
    copied += rows.length
    if (rows.length < PAGE_ROWS) return copied
    after = rows.at(-1)!.id
  }
}
