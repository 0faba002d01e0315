/**
 * Finds (or creates) the master key that encrypts upstream secrets at rest. The first of these that
 * holds a key wins:
 *   1. PROXY_MASTER_KEY
 *   2. a systemd credential: `$CREDENTIALS_DIRECTORY/proxy-master-key` (from `LoadCredential=`)
 *   3. the OS keychain (skipped with PROXY_KEYCHAIN=off)
 *   4. `<dataDir>/master.key` (mode 0600), created on first use when nothing else holds a key
 * Each may hold a key ring, newest first (comma-separated, or one key per line): secrets are
 * encrypted with the first and decrypted with any, so a rotated key can be rolled out gradually.
 */
import { createHash, randomBytes } from 'node:crypto'
import { constants as fsConstants, realpathSync } from 'node:fs'
import { link, open, rename, stat, unlink } from 'node:fs/promises'
import path from 'node:path'
import { generateFernetKey, isValidFernetKey } from './fernet.js'

export type MasterKeySource = 'env' | 'credential' | 'keychain' | 'file'

export interface KeychainStatus {
  available: boolean
  /** Human-readable, safe to print: never contains a secret. */
  detail: string
}

export interface MasterKey {
  /** The newest key: every new secret is encrypted with it. */
  key: string
  /** The whole ring, newest first (`key` is its first member). */
  keys: string[]
  source: MasterKeySource
  created: boolean
  keychain: KeychainStatus
}

export interface KeychainBackend {
  get(account: string): Promise<string | null>
  set(account: string, value: string): Promise<void>
  probe(): Promise<KeychainStatus>
}

export interface MasterKeyOptions {
  dataDir: string
  env?: Record<string, string | undefined>
  create?: boolean
  /** undefined: the OS keychain via defaultKeychain(env); null: none; an object: that backend. */
  keychain?: KeychainBackend | null
}

export class MasterKeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MasterKeyError'
  }
}

export const KEYCHAIN_SERVICE = 'proxy'
export const KEY_FILE_NAME = 'master.key'
const ENV_KEY = 'PROXY_MASTER_KEY'
const ENV_KEYCHAIN = 'PROXY_KEYCHAIN'
export { CREDENTIAL_NAME } from './paths.js'
import { CREDENTIAL_NAME } from './paths.js'
// A locked keychain may show an unlock prompt, so allow a human time to answer it; past this
// we treat the keychain as unavailable rather than hang `serve` or a CLI command forever.
const KEYCHAIN_TIMEOUT_MS = 60_000

const GENERATE_HINT =
  'Generate one with: node -e "console.log(require(\'node:crypto\').randomBytes(32).toString(\'base64url\') + \'=\')"'

type Env = Record<string, string | undefined>

function keychainDisabled(env: Env): boolean {
  return env[ENV_KEYCHAIN]?.trim().toLowerCase() === 'off'
}

function canonicalDir(dataDir: string): string {
  const abs = path.resolve(dataDir)
  // Resolve symlinks so /tmp/x and /private/tmp/x (macOS) map to one keychain entry.
  try {
    return realpathSync.native(abs)
  } catch {
    return abs
  }
}

/** Keychain account for a data dir: each data dir gets its own key. */
export function keychainAccountFor(dataDir: string): string {
  const digest = createHash('sha256').update(canonicalDir(dataDir)).digest('hex')
  return `master-key:${digest.slice(0, 16)}`
}

export function masterKeyPath(dataDir: string): string {
  return path.join(path.resolve(dataDir), KEY_FILE_NAME)
}

function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err)
  return msg.replace(/^Platform failure:\s*/i, '').trim() || 'unknown error'
}

function unavailableDetail(err: unknown): string {
  const what = process.platform === 'linux' ? 'no Secret Service' : 'OS keychain unavailable'
  return `${what} (${errorText(err)})`
}

// Only the parts of @napi-rs/keyring we call, so a missing optional dependency cannot break typechecking.
interface KeyringEntry {
  getPassword(signal?: AbortSignal | null): Promise<string | null>
  setPassword(password: string, signal?: AbortSignal | null): Promise<void>
}
interface KeyringModule {
  AsyncEntry: new (service: string, account: string, options?: { linux?: { store?: 'secret-service' | 'keyutils' } }) => KeyringEntry
}

function napiKeychain(mod: KeyringModule): KeychainBackend {
  // Pinned to the Secret Service on Linux: the default falls back to the kernel keyring,
  // which forgets everything at reboot and would silently lose the master key.
  // AsyncEntry rather than Entry so a stuck D-Bus call can be abandoned instead of blocking the event loop.
  const entry = (account: string): KeyringEntry =>
    new mod.AsyncEntry(KEYCHAIN_SERVICE, account, { linux: { store: 'secret-service' } })
  let probed: Promise<KeychainStatus> | undefined

  return {
    async get(account) {
      return entry(account).getPassword(AbortSignal.timeout(KEYCHAIN_TIMEOUT_MS))
    },
    async set(account, value) {
      await entry(account).setPassword(value, AbortSignal.timeout(KEYCHAIN_TIMEOUT_MS))
    },
    probe() {
      // Reading an account nobody writes is the cheapest call that touches the store;
      // the answer does not change within a process, so ask once.
      probed ??= (async (): Promise<KeychainStatus> => {
        try {
          await entry('probe').getPassword(AbortSignal.timeout(KEYCHAIN_TIMEOUT_MS))
          return { available: true, detail: process.platform === 'linux' ? 'Secret Service' : 'OS keychain' }
        } catch (err) {
          return { available: false, detail: unavailableDetail(err) }
        }
      })()
      return probed
    },
  }
}

async function loadKeyring(): Promise<{ mod: KeyringModule | null; detail: string }> {
  try {
    const mod: KeyringModule = await import('@napi-rs/keyring')
    if (typeof mod.AsyncEntry !== 'function') return { mod: null, detail: '@napi-rs/keyring has no AsyncEntry export' }
    return { mod, detail: '' }
  } catch (err) {
    // The optional dependency is absent, or has no prebuilt binary for this platform.
    return { mod: null, detail: `@napi-rs/keyring could not be loaded (${errorText(err)})` }
  }
}

/** The @napi-rs/keyring backend, or null when disabled by PROXY_KEYCHAIN=off or not installed. */
export async function defaultKeychain(env: Env = process.env): Promise<KeychainBackend | null> {
  if (keychainDisabled(env)) return null
  const { mod } = await loadKeyring()
  return mod === null ? null : napiKeychain(mod)
}

async function chooseKeychain(
  opts: MasterKeyOptions,
  env: Env,
): Promise<{ backend: KeychainBackend | null; status: KeychainStatus }> {
  if (keychainDisabled(env)) {
    return { backend: null, status: { available: false, detail: `disabled by ${ENV_KEYCHAIN}=off` } }
  }
  if (opts.keychain === null) return { backend: null, status: { available: false, detail: 'no keychain configured' } }

  let backend: KeychainBackend
  if (opts.keychain === undefined) {
    const { mod, detail } = await loadKeyring()
    if (mod === null) return { backend: null, status: { available: false, detail } }
    backend = napiKeychain(mod)
  } else {
    backend = opts.keychain
  }
  try {
    const status = await backend.probe()
    return { backend: status.available ? backend : null, status }
  } catch (err) {
    return { backend: null, status: { available: false, detail: unavailableDetail(err) } }
  }
}

/** A ring as written by people: keys separated by commas or line breaks, newest first. */
export function parseKeyRing(text: string, where: string): string[] {
  const keys = [...new Set(text.split(/[\s,]+/).filter((k) => k !== ''))]
  if (keys.length === 0 || !keys.every(isValidFernetKey)) {
    // The value itself is never echoed: even a malformed key may be most of a real one.
    throw new MasterKeyError(
      `${where} does not contain a valid master key (expected 32 bytes of url-safe base64, 44 characters ending in "="; several are separated by commas or lines, newest first).`,
    )
  }
  return keys
}

async function readKeyFile(file: string): Promise<string[] | null> {
  let handle
  try {
    // O_NOFOLLOW: a symlink planted in the data dir must not redirect us to another file.
    handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return null
    if (code === 'ELOOP') throw new MasterKeyError(`Refusing to use ${file}: it is a symbolic link.`)
    throw new MasterKeyError(`Cannot read ${file}: ${errorText(err)}`)
  }
  try {
    // fstat on the open handle, so the mode we check belongs to the bytes we read.
    const st = await handle.stat()
    if (!st.isFile()) throw new MasterKeyError(`Refusing to use ${file}: it is not a regular file.`)
    // Windows has no POSIX modes; there the file inherits the ACL of the data dir.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0')
      throw new MasterKeyError(
        `Refusing to use ${file}: its mode is ${mode}, so other users can access the master key. ` +
          `Run: chmod 600 ${JSON.stringify(file)}`,
      )
    }
    return parseKeyRing(await handle.readFile('utf8'), file)
  } finally {
    await handle.close()
  }
}

/**
 * Writes the key to a private temp file, then hard-links it into place: the key file
 * appears complete or not at all, and link() fails if another process created it first.
 * Returns the key that ended up in the file (ours, or the winner's after a race).
 */
async function createKeyFile(dataDir: string, key: string): Promise<string[]> {
  const dir = path.resolve(dataDir)
  try {
    if (!(await stat(dir)).isDirectory()) throw new MasterKeyError(`Data directory ${dir} is not a directory.`)
  } catch (err) {
    if (err instanceof MasterKeyError) throw err
    throw new MasterKeyError(`Data directory ${dir} does not exist; create it before generating a master key.`)
  }

  const file = path.join(dir, KEY_FILE_NAME)
  const tmp = path.join(dir, `.${KEY_FILE_NAME}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', 0o600).catch((err: unknown) => {
    throw new MasterKeyError(`Cannot create a key file in ${dir}: ${errorText(err)}`)
  })
  try {
    // The process umask can only clear bits from 0600, but make the result exact.
    await handle.chmod(0o600)
    await handle.writeFile(`${key}\n`, 'utf8')
    await handle.sync()
  } catch (err) {
    await handle.close()
    await unlink(tmp).catch(() => {})
    throw new MasterKeyError(`Cannot write ${file}: ${errorText(err)}`)
  }
  await handle.close()

  try {
    await link(tmp, file)
    return [key]
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      const theirs = await readKeyFile(file)
      if (theirs !== null) return theirs
    }
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EXDEV') {
      // Filesystems without hard links: exclusive create directly (briefly visible half-written).
      return writeKeyFileDirect(file, key)
    }
    throw new MasterKeyError(`Cannot create ${file}: ${errorText(err)}`)
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

async function writeKeyFileDirect(file: string, key: string): Promise<string[]> {
  const handle = await open(file, 'wx', 0o600).catch((err: unknown) => {
    throw new MasterKeyError(`Cannot create ${file}: ${errorText(err)}`)
  })
  try {
    await handle.chmod(0o600)
    await handle.writeFile(`${key}\n`, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
  return [key]
}

export async function resolveMasterKey(opts: MasterKeyOptions): Promise<MasterKey> {
  const env: Env = opts.env ?? process.env

  const fromEnv = env[ENV_KEY]
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    let keys: string[]
    try {
      keys = parseKeyRing(fromEnv, ENV_KEY)
    } catch {
      throw new MasterKeyError(
        `${ENV_KEY} is malformed: it must be a Fernet key, 32 random bytes in url-safe base64 (44 characters ending in "="), ` +
          `or several separated by commas, newest first. ` +
          GENERATE_HINT,
      )
    }
    // Not probed: an explicit key should work without touching (or prompting for) the keychain.
    return ring(keys, 'env', { available: false, detail: `not checked (${ENV_KEY} is set)` })
  }

  const credential = credentialPath(env)
  const fromCredential = credential === null ? null : await readKeyFile(credential)
  if (fromCredential !== null) {
    return ring(fromCredential, 'credential', { available: false, detail: 'not checked (a systemd credential holds the master key)' })
  }

  const { backend, status } = await chooseKeychain(opts, env)
  const account = keychainAccountFor(opts.dataDir)
  let keychain = status
  // True when the keychain works but reading our entry failed: the real key may be in there.
  let keychainReadFailed = false

  if (backend !== null) {
    let stored: string | null = null
    try {
      stored = await backend.get(account)
    } catch (err) {
      keychainReadFailed = true
      keychain = { available: false, detail: `keychain read failed (${errorText(err)})` }
    }
    if (stored !== null) return ring(parseKeyRing(stored, `Keychain entry "${KEYCHAIN_SERVICE}/${account}"`), 'keychain', keychain)
  }

  const file = masterKeyPath(opts.dataDir)
  const fromFile = await readKeyFile(file)
  if (fromFile !== null) return ring(fromFile, 'file', keychain)

  if (!opts.create) {
    throw new MasterKeyError(
      `No master key found: ${ENV_KEY} is not set, the OS keychain has none (${keychain.detail}), ` +
        `and ${file} does not exist. Set ${ENV_KEY}, or initialise the data directory to generate one. ` +
        GENERATE_HINT,
    )
  }
  if (keychainReadFailed) {
    // A fresh key here would orphan every secret encrypted under the one we could not read.
    throw new MasterKeyError(
      `Could not read the OS keychain (${keychain.detail}); refusing to generate a new master key in case one is stored there. ` +
        `Unlock the keychain and retry, or set ${ENV_KEY}, or set ${ENV_KEYCHAIN}=off to use ${file}.`,
    )
  }

  const key = generateFernetKey()
  if (backend !== null) {
    try {
      await backend.set(account, key)
      // Read back: confirms the store persisted it, and if another process raced us, use its key.
      const back = await backend.get(account)
      if (back !== null && isValidFernetKey(back.trim())) {
        return { ...ring([back.trim()], 'keychain', keychain), created: back.trim() === key }
      }
      keychain = { available: false, detail: 'keychain accepted the key but did not return it' }
    } catch (err) {
      keychain = { available: false, detail: `keychain write failed (${errorText(err)})` }
    }
  }

  const written = await createKeyFile(opts.dataDir, key)
  return { ...ring(written, 'file', keychain), created: written[0] === key }
}

function ring(keys: string[], source: MasterKeySource, keychain: KeychainStatus): MasterKey {
  return { key: keys[0]!, keys, source, created: false, keychain }
}

/** A short, safe name for a key (its SHA-256, shortened), so output can tell keys apart without showing one. */
export function keyFingerprint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12)
}

/** `$CREDENTIALS_DIRECTORY/proxy-master-key`, when systemd passed credentials to this process. */
export function credentialPath(env: Env = process.env): string | null {
  const dir = env.CREDENTIALS_DIRECTORY?.trim()
  return dir ? path.join(dir, CREDENTIAL_NAME) : null
}

/**
 * Stores a new ring where the current master key came from, when proxy can write there: the key file
 * (replaced atomically, mode 0600) or the keychain entry. Returns false for PROXY_MASTER_KEY and a
 * systemd credential, which only the operator can change.
 */
export async function storeKeyRing(opts: MasterKeyOptions, from: MasterKey, keys: readonly string[]): Promise<boolean> {
  if (from.source === 'env' || from.source === 'credential') return false
  if (from.source === 'keychain') {
    const env: Env = opts.env ?? process.env
    const { backend, status } = await chooseKeychain(opts, env)
    if (backend === null) throw new MasterKeyError(`Cannot write the new key ring to the OS keychain: ${status.detail}.`)
    const account = keychainAccountFor(opts.dataDir)
    await backend.set(account, keys.join(','))
    const back = await backend.get(account)
    if (back === null || back.trim() !== keys.join(',')) throw new MasterKeyError('The OS keychain did not keep the new key ring.')
    return true
  }
  const file = masterKeyPath(opts.dataDir)
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.chmod(0o600)
    await handle.writeFile(`${keys.join('\n')}\n`, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw new MasterKeyError(`Cannot replace ${file}: ${errorText(err)}`)
  }
  return true
}
