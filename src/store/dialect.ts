/**
 * Everything that differs between the two store backends, SQLite (the default) and PostgreSQL, in one
 * place: how a connection is made, how the migrations' column types are spelled, how numbers come back,
 * and what a connection error means to the user. Repositories and migrations are written once, in
 * Kysely's portable subset; only the few statements kysely has no verb for ask `isPostgres`.
 */
import type pg from 'pg'
import {
  ColumnDefinitionNode,
  CompiledQuery,
  DataTypeNode,
  Kysely,
  OperationNodeTransformer,
  PostgresAdapter,
  PostgresDialect,
  sql,
  SqliteDialect,
  type DatabaseConnection,
  type Driver,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type TransactionSettings,
  type UnknownRow,
} from 'kysely'
import { describeConnectionError, postgresPool } from './pg-connection.js'

/**
 * Kysely's SQLite dialect, with write transactions begun IMMEDIATE. A deferred transaction that reads
 * and then writes cannot wait for the lock: if another connection (the server's audit thread, another
 * CLI) commits between its read and its first write, SQLite answers SQLITE_BUSY at once, whatever the
 * busy timeout. Taking the write lock at BEGIN makes it wait like any other write. Transactions marked
 * `setAccessMode('read only')` (a config snapshot) stay deferred and never hold up writers.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver()
    const begin = CompiledQuery.raw('begin immediate')
    const beginDeferred = driver.beginTransaction.bind(driver)
    driver.beginTransaction = async (connection: DatabaseConnection, settings: TransactionSettings) => {
      if (settings.accessMode === 'read only') return beginDeferred(connection, settings)
      await connection.executeQuery(begin)
    }
    return driver
  }
}

export type StoreKind = 'sqlite' | 'postgres'

export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url)
}

/**
 * Spells the migrations' portable column types the PostgreSQL way, so one migration makes the same
 * schema on both: `integer` becomes `bigint` (SQLite's integers are 64-bit; token sums outgrow int4),
 * an auto-increment integer primary key becomes `bigserial`, and `real` becomes `double precision`
 * (SQLite's REAL is a double; PostgreSQL's `real` is 4 bytes). A new migration therefore just writes
 * `addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())` and `'integer'`/`'real'`/`'text'`.
 */
export class PostgresTypesPlugin implements KyselyPlugin {
  readonly #transformer = new PostgresTypesTransformer()
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const kind = args.node.kind
    if (kind !== 'CreateTableNode' && kind !== 'AlterTableNode') return args.node
    return this.#transformer.transformNode(args.node, args.queryId)
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}

class PostgresTypesTransformer extends OperationNodeTransformer {
  protected override transformColumnDefinition(node: ColumnDefinitionNode, queryId?: Parameters<OperationNodeTransformer['transformColumnDefinition']>[1]): ColumnDefinitionNode {
    const column = super.transformColumnDefinition(node, queryId)
    if (!DataTypeNode.is(column.dataType)) return column
    const type = column.dataType.dataType
    if (type === 'integer' && column.autoIncrement) {
      return ColumnDefinitionNode.cloneWith({ ...column, dataType: DataTypeNode.create('bigserial') }, { autoIncrement: false })
    }
    const mapped = type === 'integer' ? 'bigint' : type === 'real' ? 'double precision' : null
    return mapped ? { ...column, dataType: DataTypeNode.create(mapped) } : column
  }
}

/**
 * Connections: snapshot reloads and admin API writes take one briefly, LISTEN has its own client outside
 * the pool, and so has the server's writer thread (postgres-thread.js). A CLI command uses one.
 */
const POOL_SIZE = 5

// Connection settings and error messages live in plain JavaScript, shared with the writer thread.
export { describeConnectionError, isConnectionFailure, postgresConfig, redactUrl } from './pg-connection.js'

/** Loaded only when a PostgreSQL store is used: SQLite users never load the driver. */
export async function loadPg(): Promise<typeof pg> {
  return (await import('pg')).default
}

export interface PostgresHandle<DB> {
  db: Kysely<DB>
  pool: pg.Pool
}

/** A pool and a Kysely on it; the first connection is made here, so a bad URL fails at open with a clear message. */
export async function connectPostgres<DB>(url: string, opts: { max?: number } = {}): Promise<PostgresHandle<DB>> {
  const pool = postgresPool(await loadPg(), url, opts.max ?? POOL_SIZE)
  try {
    const client = await pool.connect()
    client.release()
  } catch (err) {
    await pool.end().catch(() => {})
    throw new StoreConnectionError(describeConnectionError(err, url))
  }
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), plugins: [new PostgresTypesPlugin()] })
  return { db, pool }
}

export class StoreConnectionError extends Error {
  override name = 'StoreConnectionError'
}

/** The channel a configuration change is announced on (migration 0005's trigger on PostgreSQL). */
export const CONFIG_CHANNEL = 'proxy_config'

/** Whether a table exists where unqualified names resolve (PostgreSQL: the search path). */
export async function tableExists(db: Kysely<any>, name: string): Promise<boolean> {
  const { rows } = isPostgres(db)
    ? await sql<{ n: number }>`SELECT count(*) AS n FROM pg_catalog.pg_class WHERE oid = to_regclass(${name})`.execute(db)
    : await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${name}`.execute(db)
  return Number(rows[0]?.n) > 0
}

/** The tables `table`'s foreign keys point at (to copy parents first). */
export async function parentTables(db: Kysely<any>, table: string): Promise<string[]> {
  if (isPostgres(db)) {
    const { rows } = await sql<{ parent: string }>`
      SELECT DISTINCT ccu.table_name AS parent FROM information_schema.table_constraints tc
      JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name AND ccu.constraint_schema = tc.constraint_schema
      WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_name = ${table} AND tc.table_schema = current_schema()`.execute(db)
    return rows.map((r) => r.parent).filter((p) => p !== table)
  }
  const { rows } = await sql<{ table: string }>`SELECT DISTINCT "table" FROM pragma_foreign_key_list(${table})`.execute(db)
  return rows.map((r) => r.table).filter((p) => p !== table)
}

/** After rows were inserted with their own ids: PostgreSQL's id sequence continues after the largest. Call for tables with an `id` column. */
export async function continueIdSequence(db: Kysely<any>, table: string): Promise<void> {
  if (!isPostgres(db)) return // SQLite's AUTOINCREMENT follows explicit ids by itself
  const { rows } = await sql<{ seq: string | null }>`SELECT pg_get_serial_sequence(${table}, 'id') AS seq`.execute(db)
  if (!rows[0]?.seq) return
  await sql`SELECT setval(${rows[0].seq}, coalesce((SELECT max(id) FROM ${sql.table(table)}), 0) + 1, false)`.execute(db)
}

/** Bound parameters one statement may carry, with room to spare (PostgreSQL 65 535, SQLite 32 766). */
export function maxParameters(db: Kysely<any>): number {
  return isPostgres(db) ? 60_000 : 30_000
}

/** Opens a Kysely on a store file or database URL without the rest of the store (no master key): for copying. */
export async function openDatabase<DB>(location: string): Promise<Kysely<DB>> {
  if (isPostgresUrl(location)) return (await connectPostgres<DB>(location)).db
  const { SQLite } = await import('./sqlite-driver.js')
  const sqlite = new SQLite(location, { timeout: 5000 })
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  return new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) })
}

/**
 * Counts every change to `table` as a configuration change (migration 0005's counter), so running
 * servers reload when it changes: SQLite triggers per row, a PostgreSQL trigger per statement that also
 * NOTIFYs. A later migration that adds a configuration table calls this once for it.
 */
export async function countConfigChanges(db: Kysely<any>, table: string): Promise<void> {
  if (isPostgres(db)) {
    await sql.raw(`CREATE TRIGGER config_version_${table} AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION config_version_bump()`).execute(db)
    return
  }
  for (const event of ['INSERT', 'UPDATE', 'DELETE']) {
    await sql.raw(`CREATE TRIGGER config_version_${table}_${event.toLowerCase()} AFTER ${event} ON ${table} BEGIN ${CONFIG_VERSION_BUMP}; END`).execute(db)
  }
}

export const CONFIG_VERSION_BUMP = 'UPDATE config_version SET version = version + 1 WHERE id = 1'
