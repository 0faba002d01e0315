import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { generateFernetKey } from '../../../src/store/fernet.js'
import {
  defaultKeychain,
  keychainAccountFor,
  type KeychainBackend,
  type KeychainStatus,
  MasterKeyError,
  resolveMasterKey,
} from '../../../src/store/master-key.js'

class FakeKeychain implements KeychainBackend {
  readonly entries = new Map<string, string>()
  calls = 0
  constructor(
    private readonly status: KeychainStatus = { available: true, detail: 'fake keychain' },
    private readonly failReads = false,
  ) {}
  async get(account: string): Promise<string | null> {
    this.calls++
    if (this.failReads) throw new Error('keychain is locked')
    return this.entries.get(account) ?? null
  }
  async set(account: string, value: string): Promise<void> {
    this.calls++
    this.entries.set(account, value)
  }
  async probe(): Promise<KeychainStatus> {
    this.calls++
    return this.status
  }
}

const isWindows = process.platform === 'win32'

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the promise to reject')
}

describe('resolveMasterKey', () => {
  let dataDir: string
  let keyFile: string

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'proxy-master-key-'))
    keyFile = path.join(dataDir, 'master.key')
  })
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  it('uses PROXY_MASTER_KEY before the keychain and the key file', async () => {
    const envKey = generateFernetKey()
    const keychain = new FakeKeychain()
    keychain.entries.set(keychainAccountFor(dataDir), generateFernetKey())
    await writeFile(keyFile, generateFernetKey(), { mode: 0o600 })

    const mk = await resolveMasterKey({ dataDir, env: { PROXY_MASTER_KEY: envKey }, keychain, create: true })
    expect(mk).toMatchObject({ key: envKey, source: 'env', created: false })
    expect(mk.keychain.detail).toMatch(/PROXY_MASTER_KEY/)
    expect(keychain.calls).toBe(0)
  })

  it('explains a malformed PROXY_MASTER_KEY without echoing it', async () => {
    const bad = 'definitely-not-a-fernet-key'
    const err = await rejection(resolveMasterKey({ dataDir, env: { PROXY_MASTER_KEY: bad }, keychain: null }))
    expect(err).toBeInstanceOf(MasterKeyError)
    expect(err.message).toMatch(/PROXY_MASTER_KEY is malformed/)
    expect(err.message).toMatch(/Generate one with/)
    expect(err.message).not.toContain(bad)
  })

  it('reads the key stored in the keychain', async () => {
    const stored = generateFernetKey()
    const keychain = new FakeKeychain()
    keychain.entries.set(keychainAccountFor(dataDir), stored)
    const mk = await resolveMasterKey({ dataDir, env: {}, keychain })
    expect(mk).toMatchObject({ key: stored, source: 'keychain', created: false, keychain: { available: true } })
  })

  it('creates the key in the keychain when one is available, and finds it again', async () => {
    const keychain = new FakeKeychain()
    const first = await resolveMasterKey({ dataDir, env: {}, keychain, create: true })
    expect(first).toMatchObject({ source: 'keychain', created: true })
    expect(keychain.entries.get(keychainAccountFor(dataDir))).toBe(first.key)
    await expect(stat(keyFile)).rejects.toThrow(/ENOENT/)

    const second = await resolveMasterKey({ dataDir, env: {}, keychain })
    expect(second).toMatchObject({ key: first.key, source: 'keychain', created: false })
  })

  it('gives each data dir its own keychain account', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'proxy-master-key-other-'))
    try {
      expect(keychainAccountFor(other)).not.toBe(keychainAccountFor(dataDir))
      expect(keychainAccountFor(dataDir)).toMatch(/^master-key:[0-9a-f]{16}$/)
      const keychain = new FakeKeychain()
      const a = await resolveMasterKey({ dataDir, env: {}, keychain, create: true })
      const b = await resolveMasterKey({ dataDir: other, env: {}, keychain, create: true })
      expect(a.key).not.toBe(b.key)
    } finally {
      await rm(other, { recursive: true, force: true })
    }
  })

  it.skipIf(isWindows)('falls back to a 0600 key file and reads it back', async () => {
    const first = await resolveMasterKey({ dataDir, env: {}, keychain: null, create: true })
    expect(first).toMatchObject({ source: 'file', created: true, keychain: { available: false } })
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    expect((await readFile(keyFile, 'utf8')).trim()).toBe(first.key)

    const second = await resolveMasterKey({ dataDir, env: {}, keychain: null })
    expect(second).toMatchObject({ key: first.key, source: 'file', created: false })
  })

  it('falls back to the key file when the keychain probe says unavailable', async () => {
    const keychain = new FakeKeychain({ available: false, detail: 'no Secret Service (fake)' })
    const mk = await resolveMasterKey({ dataDir, env: {}, keychain, create: true })
    expect(mk).toMatchObject({ source: 'file', created: true, keychain: { available: false, detail: 'no Secret Service (fake)' } })
    expect(keychain.entries.size).toBe(0)
  })

  it.skipIf(isWindows)('refuses a key file that others can read', async () => {
    await writeFile(keyFile, `${generateFernetKey()}\n`)
    await chmod(keyFile, 0o644)
    const err = await rejection(resolveMasterKey({ dataDir, env: {}, keychain: null, create: true }))
    expect(err).toBeInstanceOf(MasterKeyError)
    expect(err.message).toMatch(/0644/)
    expect(err.message).toMatch(/chmod 600/)
  })

  it('refuses a malformed key file instead of replacing it', async () => {
    await writeFile(keyFile, 'garbage\n', { mode: 0o600 })
    await expect(resolveMasterKey({ dataDir, env: {}, keychain: null, create: true })).rejects.toThrow(MasterKeyError)
    expect(await readFile(keyFile, 'utf8')).toBe('garbage\n')
  })

  it('throws MasterKeyError when nothing is stored and create is false', async () => {
    const err = await rejection(resolveMasterKey({ dataDir, env: {}, keychain: new FakeKeychain() }))
    expect(err).toBeInstanceOf(MasterKeyError)
    expect(err.message).toMatch(/No master key found/)
    expect(err.message).toMatch(/PROXY_MASTER_KEY/)
  })

  it('skips the keychain entirely with PROXY_KEYCHAIN=off', async () => {
    const keychain = new FakeKeychain()
    keychain.entries.set(keychainAccountFor(dataDir), generateFernetKey())
    const mk = await resolveMasterKey({ dataDir, env: { PROXY_KEYCHAIN: 'off' }, keychain, create: true })
    expect(mk).toMatchObject({ source: 'file', created: true })
    expect(mk.keychain).toEqual({ available: false, detail: 'disabled by PROXY_KEYCHAIN=off' })
    expect(keychain.calls).toBe(0)
  })

  it('will not create a new key when the keychain works but reading it fails', async () => {
    const keychain = new FakeKeychain({ available: true, detail: 'fake' }, true)
    const err = await rejection(resolveMasterKey({ dataDir, env: {}, keychain, create: true }))
    expect(err).toBeInstanceOf(MasterKeyError)
    expect(err.message).toMatch(/refusing to generate/)
    await expect(stat(keyFile)).rejects.toThrow(/ENOENT/)
  })

  it('rejects a keychain entry that is not a Fernet key', async () => {
    const keychain = new FakeKeychain()
    keychain.entries.set(keychainAccountFor(dataDir), 'corrupt')
    await expect(resolveMasterKey({ dataDir, env: {}, keychain, create: true })).rejects.toThrow(MasterKeyError)
  })

  it('needs an existing data dir to create the key file', async () => {
    const missing = path.join(dataDir, 'does-not-exist')
    const err = await rejection(resolveMasterKey({ dataDir: missing, env: {}, keychain: null, create: true }))
    expect(err).toBeInstanceOf(MasterKeyError)
    expect(err.message).toMatch(/does not exist/)
  })
})

describe('defaultKeychain', () => {
  it('is null when PROXY_KEYCHAIN=off', async () => {
    expect(await defaultKeychain({ PROXY_KEYCHAIN: 'off' })).toBeNull()
  })

  it('resolves to null or a backend with a well-formed probe on this machine', async () => {
    const backend = await defaultKeychain({})
    if (backend === null) return
    const status = await backend.probe()
    expect(typeof status.available).toBe('boolean')
    expect(status.detail.length).toBeGreaterThan(0)
    if (process.platform === 'linux' && !process.env.DBUS_SESSION_BUS_ADDRESS) {
      expect(status).toMatchObject({ available: false, detail: expect.stringMatching(/^no Secret Service/) })
    }
  })
})
