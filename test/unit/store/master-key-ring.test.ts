import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { generateFernetKey } from '../../../src/store/fernet.js'
import { CREDENTIAL_NAME, MasterKeyError, masterKeyPath, resolveMasterKey, storeKeyRing } from '../../../src/store/master-key.js'

describe('master key rings and systemd credentials', () => {
  let dir: string
  const [a, b, c] = [generateFernetKey(), generateFernetKey(), generateFernetKey()]
  const resolve = (env: Record<string, string>) => resolveMasterKey({ dataDir: dir, env: { PROXY_KEYCHAIN: 'off', ...env }, keychain: null })

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'proxy-ring-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function writeCredential(text: string): Promise<string> {
    const creds = path.join(dir, 'creds')
    await mkdir(creds, { mode: 0o700 })
    await writeFile(path.join(creds, CREDENTIAL_NAME), text, { mode: 0o400 })
    return creds
  }

  it('reads a comma-separated ring from PROXY_MASTER_KEY, newest first', async () => {
    const key = await resolve({ PROXY_MASTER_KEY: ` ${a}, ${b} ` })
    expect(key).toMatchObject({ source: 'env', key: a, keys: [a, b] })
  })

  it('reads a ring from the key file, one key per line', async () => {
    await writeFile(masterKeyPath(dir), `${a}\n${b}\n`, { mode: 0o600 })
    expect(await resolve({})).toMatchObject({ source: 'file', key: a, keys: [a, b] })
  })

  it('never echoes a malformed ring member', async () => {
    const bad = `${a},${b.slice(0, 30)}`
    const err = await resolve({ PROXY_MASTER_KEY: bad }).then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(MasterKeyError)
    expect(err!.message).not.toContain(b.slice(0, 30))
    expect(err!.message).not.toContain(a)
  })

  it('takes the systemd credential after PROXY_MASTER_KEY and before the key file', async () => {
    await writeFile(masterKeyPath(dir), `${c}\n`, { mode: 0o600 })
    const creds = await writeCredential(`${a}\n${b}\n`)
    expect(await resolve({ CREDENTIALS_DIRECTORY: creds })).toMatchObject({ source: 'credential', keys: [a, b] })
    expect(await resolve({ CREDENTIALS_DIRECTORY: creds, PROXY_MASTER_KEY: c })).toMatchObject({ source: 'env', keys: [c] })
    // A credentials directory without our credential is passed over.
    await rm(path.join(creds, CREDENTIAL_NAME))
    expect(await resolve({ CREDENTIALS_DIRECTORY: creds })).toMatchObject({ source: 'file', keys: [c] })
  })

  it('writes a new ring to the keychain entry the key came from', async () => {
    const entries = new Map<string, string>()
    const keychain = {
      get: async (account: string) => entries.get(account) ?? null,
      set: async (account: string, value: string) => void entries.set(account, value),
      probe: async () => ({ available: true, detail: 'fake keychain' }),
    }
    const first = await resolveMasterKey({ dataDir: dir, env: {}, keychain, create: true })
    expect(first.source).toBe('keychain')
    expect(await storeKeyRing({ dataDir: dir, env: {}, keychain }, first, [a, first.key])).toBe(true)
    expect(await resolveMasterKey({ dataDir: dir, env: {}, keychain })).toMatchObject({ source: 'keychain', keys: [a, first.key] })
  })

  it('rewrites the key file with a new ring, mode 0600, and leaves PROXY_MASTER_KEY and credentials alone', async () => {
    await writeFile(masterKeyPath(dir), `${b}\n`, { mode: 0o600 })
    await chmod(masterKeyPath(dir), 0o600)
    const before = await resolve({})
    expect(await storeKeyRing({ dataDir: dir, keychain: null }, before, [a, b])).toBe(true)
    expect(await readFile(masterKeyPath(dir), 'utf8')).toBe(`${a}\n${b}\n`)
    expect((await stat(masterKeyPath(dir))).mode & 0o777).toBe(0o600)
    expect(await resolve({})).toMatchObject({ key: a, keys: [a, b] })

    const fromEnv = await resolve({ PROXY_MASTER_KEY: b })
    expect(await storeKeyRing({ dataDir: dir, keychain: null }, fromEnv, [c, b])).toBe(false)
    const creds = await writeCredential(b)
    const fromCredential = await resolve({ CREDENTIALS_DIRECTORY: creds })
    expect(await storeKeyRing({ dataDir: dir, keychain: null }, fromCredential, [c, b])).toBe(false)
    expect(await readFile(path.join(creds, CREDENTIAL_NAME), 'utf8')).toBe(b)
  })
})
