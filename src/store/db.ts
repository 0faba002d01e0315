import { closeSync, existsSync, mkdirSync, openSync, chmodSync, statSync } from 'node:fs'
import path from 'node:path'
import type SQLite from 'better-sqlite3'
import { Kysely } from 'kysely'
import { SQLite as SQLiteDriver } from './sqlite-driver.js'
import type pg from 'pg'
import { connectPostgres, ImmediateSqliteDialect, redactUrl, StoreConnectionError, type StoreKind } from './dialect.js'
import { createFernetRing, type FernetRing } from './fernet.js'
import { resolveMasterKey, MasterKeyError, type MasterKey, type KeychainBackend } from './master-key.js'
import { migrateToLatest } from './migrate.js'
import { STORE_FILE, type Env } from './paths.js'
import type { Database } from './schema.js'

interface StoreBase {
  readonly kind: StoreKind
  /** where the master key file, admin token and server.json live (also with PostgreSQL) */
  readonly dataDir: string
  /** the store file, or the database URL without its password: for messages */
  readonly location: string
  readonly db: Kysely<Database>
  /** The master key ring: encrypts with the newest key, decrypts with any. */
  readonly fernet: FernetRing
  readonly masterKey: MasterKey
  /**
   * Reads the master key again from where it lives, and takes the ring when it decrypts this store:
   * after `proxy secrets rotate-master` a running server picks up the new ring this way. True when it changed.
   */
  refreshMasterKey(): Promise<boolean>
  close(): Promise<void>
}

export interface SqliteStore extends StoreBase {
  readonly kind: 'sqlite'
  readonly file: string
  /** The raw handle, for pragmas (data_version polling) that Kysely has no verb for. */
  readonly sqlite: SQLite.Database
}

export interface PostgresStore extends StoreBase {
  readonly kind: 'postgres'
  /** the connection URL, password included: for the LISTEN connection, never for messages */
  readonly url: string
  readonly pool: pg.Pool
}

export type Store = SqliteStore | PostgresStore

export interface OpenStoreOptions {
  dataDir: string
  /** postgres://… (`--database-url`, PROXY_DATABASE_URL): the store lives there instead of in the data dir */
  databaseUrl?: string | null
  env?: Env
  keychain?: KeychainBackend | null
}

/** A token of a known plaintext in `meta`, so a wrong master key fails at open, not at the first request. */
export const MASTER_KEY_CHECK = 'master_key_check'
export const CHECK_PLAINTEXT = 'proxy-master-key-check'

/**
 * Opens (creating when needed) the store in a data dir: directory 0700, database 0600, WAL, migrations
 * applied, master key resolved and checked against the one the store was written with.
 */
export async function openStore(opts: OpenStoreOptions & { databaseUrl?: undefined | null }): Promise<SqliteStore>
export async function openStore(opts: OpenStoreOptions): Promise<Store>
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const dataDir = path.resolve(opts.dataDir)
  ensurePrivateDir(dataDir)
  if (opts.databaseUrl) {
    const url = opts.databaseUrl
    const { db, pool } = await connectPostgres<Database>(url)
    return finishOpen(db, opts, dataDir, { kind: 'postgres', location: redactUrl(url), url, pool })
  }
  const file = path.join(dataDir, STORE_FILE)
  try {
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600))
    else if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600)
  } catch (err) {
    throw unusableDataDir(dataDir, fileProblem(err))
  }

  // The busy timeout comes first: a server's audit thread may be committing or checkpointing right now,
  // and even the journal_mode pragma below can meet its lock.
  const sqlite = new SQLiteDriver(file, { timeout: 5000 })
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('synchronous = NORMAL')
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) })
  return finishOpen(db, opts, dataDir, { kind: 'sqlite', location: file, file, sqlite })
}

type BackendParts = Pick<SqliteStore, 'kind' | 'location' | 'file' | 'sqlite'> | Pick<PostgresStore, 'kind' | 'location' | 'url' | 'pool'>

/** Migrations, then the master key checked against the store: the same for both backends. */
async function finishOpen(db: Kysely<Database>, opts: OpenStoreOptions, dataDir: string, backend: BackendParts): Promise<Store> {
  const env = opts.env ?? process.env
  try {
    await migrateToLatest(db)
    const readCheck = () => db.selectFrom('meta').select('value').where('key', '=', MASTER_KEY_CHECK).executeTakeFirst()
    let check = await readCheck()
    let masterKey = await resolveMasterKey({ dataDir, env, create: !check, keychain: opts.keychain })
    let fernet = createFernetRing(masterKey.keys)
    if (!check) {
      // Several instances may open a new shared store at once: the first check written is the store's.
      await db.insertInto('meta').values({ key: MASTER_KEY_CHECK, value: fernet.encrypt(CHECK_PLAINTEXT) }).onConflict((oc) => oc.column('key').doNothing()).execute()
      check = await readCheck()
    }
    if (check) {
      if (!opensCheck(fernet, check.value)) {
        throw new MasterKeyError(
          `The master key from ${describeSource(masterKey)} does not match the key this store was encrypted with. ` +
            'Set PROXY_MASTER_KEY to the original key (or a ring that holds it), or restore master.key in the data directory.',
        )
      }
    }
    return {
      ...backend,
      dataDir,
      db,
      get fernet() {
        return fernet
      },
      get masterKey() {
        return masterKey
      },
      async refreshMasterKey() {
        const again = await resolveMasterKey({ dataDir, env, create: false, keychain: opts.keychain }).catch(() => null)
        if (again === null || again.keys.join(',') === masterKey.keys.join(',')) return false
        const ring = createFernetRing(again.keys)
        const now = await db.selectFrom('meta').select('value').where('key', '=', MASTER_KEY_CHECK).executeTakeFirst()
        if (now && !opensCheck(ring, now.value)) return false
        masterKey = again
        fernet = ring
        return true
      },
      close: () => db.destroy(),
    } as Store
  } catch (err) {
    await db.destroy()
    throw err
  }
}

function opensCheck(fernet: FernetRing, token: string): boolean {
  try {
    return fernet.decryptString(token) === CHECK_PLAINTEXT
  } catch {
    return false
  }
}

export function describeSource(key: MasterKey): string {
  switch (key.source) {
    case 'env':
      return 'PROXY_MASTER_KEY'
    case 'credential':
      return 'the systemd credential proxy-master-key'
    case 'keychain':
      return 'the OS keychain'
    case 'file':
      return 'master.key'
  }
}

function ensurePrivateDir(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw unusableDataDir(dir, 'it is a file')
    return
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    chmodSync(dir, 0o700)
  } catch (err) {
    throw unusableDataDir(dir, fileProblem(err))
  }
}

const FILE_PROBLEMS: Record<string, string> = {
  ENOTDIR: 'a folder above it is a file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
}

function fileProblem(err: unknown): string {
  return FILE_PROBLEMS[(err as NodeJS.ErrnoException).code ?? ''] ?? (err as Error).message
}

/** A data directory the store cannot live in, said so that the user knows what to change. */
function unusableDataDir(dir: string, why: string): StoreConnectionError {
  return new StoreConnectionError(`Cannot use ${dir} as the data directory (${why}). Choose another with --data-dir or PROXY_DATA_DIR.`)
}
