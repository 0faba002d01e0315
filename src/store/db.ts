import { closeSync, existsSync, mkdirSync, openSync, chmodSync, statSync } from 'node:fs'
import path from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely } from 'kysely'
import { ImmediateSqliteDialect } from './dialect.js'
import { createFernet, type Fernet } from './fernet.js'
import { resolveMasterKey, MasterKeyError, type MasterKey, type KeychainBackend } from './master-key.js'
import { migrateToLatest } from './migrate.js'
import { STORE_FILE, type Env } from './paths.js'
import type { Database } from './schema.js'

export interface Store {
  readonly dataDir: string
  readonly file: string
  readonly db: Kysely<Database>
  /** The raw handle, for pragmas (data_version polling) that Kysely has no verb for. */
  readonly sqlite: SQLite.Database
  readonly fernet: Fernet
  readonly masterKey: MasterKey
  close(): Promise<void>
}

export interface OpenStoreOptions {
  dataDir: string
  env?: Env
  keychain?: KeychainBackend | null
}

const MASTER_KEY_CHECK = 'master_key_check'
const CHECK_PLAINTEXT = 'proxy-master-key-check'

/**
 * Opens (creating when needed) the store in a data dir: directory 0700, database 0600, WAL, migrations
 * applied, master key resolved and checked against the one the store was written with.
 */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const env = opts.env ?? process.env
  const dataDir = path.resolve(opts.dataDir)
  ensurePrivateDir(dataDir)
  const file = path.join(dataDir, STORE_FILE)
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600))
  else if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600)

  // The busy timeout comes first: a server's audit thread may be committing or checkpointing right now,
  // and even the journal_mode pragma below can meet its lock.
  const sqlite = new SQLite(file, { timeout: 5000 })
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('synchronous = NORMAL')
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) })
  try {
    await migrateToLatest(db)
    const check = await db.selectFrom('meta').select('value').where('key', '=', MASTER_KEY_CHECK).executeTakeFirst()
    const masterKey = await resolveMasterKey({ dataDir, env, create: !check, keychain: opts.keychain })
    const fernet = createFernet(masterKey.key)
    if (check) {
      try {
        fernet.decryptString(check.value)
      } catch {
        throw new MasterKeyError(
          `The master key from ${describeSource(masterKey)} does not match the key this store was encrypted with. ` +
            'Set PROXY_MASTER_KEY to the original key, or restore master.key in the data directory.',
        )
      }
    } else {
      await db.insertInto('meta').values({ key: MASTER_KEY_CHECK, value: fernet.encrypt(CHECK_PLAINTEXT) }).execute()
    }
    return {
      dataDir,
      file,
      db,
      sqlite,
      fernet,
      masterKey,
      close: () => db.destroy(),
    }
  } catch (err) {
    await db.destroy()
    throw err
  }
}

function describeSource(key: MasterKey): string {
  return key.source === 'env' ? 'PROXY_MASTER_KEY' : key.source === 'keychain' ? 'the OS keychain' : 'master.key'
}

function ensurePrivateDir(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    chmodSync(dir, 0o700)
  }
}
