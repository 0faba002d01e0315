import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { openStore } from '../../src/store/db.js'
import { createFernet, createFernetRing, generateFernetKey } from '../../src/store/fernet.js'
import { masterKeyPath, MasterKeyError } from '../../src/store/master-key.js'
import { addKey } from '../../src/store/repos/provider-keys.js'
import type { RunningProxy } from '../../src/server/start.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, eventually, keyFrom, startTestProxy, tempDataDir, testEnv, TEST_MASTER_KEY } from '../helpers/proxy.js'

// PROXY_MASTER_KEY blanked: the master key lives in <dataDir>/master.key, which rotate-master rewrites.
const FILE_KEY = { PROXY_MASTER_KEY: '' }

async function ok(dir: string, args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  const r = await cli(dir, args, opts)
  if (r.code !== 0) throw new Error(`proxy ${args.join(' ')} exited with ${r.code}: ${r.stderr}`)
  return r
}

async function ringOf(dir: string): Promise<string[]> {
  return (await readFile(masterKeyPath(dir), 'utf8')).trim().split('\n')
}

/** Every stored provider key's ciphertext, read with the store opened under `masterKey`. */
async function storedSecrets(dir: string, masterKey: string): Promise<string[]> {
  const store = await openStore({ dataDir: dir, env: testEnv(dir, { PROXY_MASTER_KEY: masterKey }), keychain: null })
  try {
    return (await store.db.selectFrom('provider_keys').select('secret').orderBy('id').execute()).map((r) => r.secret)
  } finally {
    await store.close()
  }
}

function chatThrough(proxy: RunningProxy, clientKey: string): Promise<Response> {
  return fetch(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${clientKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  })
}

describe('proxy secrets rotate-master with the key file', () => {
  const data = tempDataDir()
  let fake: FakeUpstream
  let proxy: RunningProxy
  let clientKey: string

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    await ok(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', fake.url], { env: FILE_KEY })
    await ok(data.dir, ['keys', 'add', 'up', '--label', 'k1'], { stdin: 'sk-upstream-one\n', env: FILE_KEY })
    await ok(data.dir, ['keys', 'add', 'up', '--label', 'k2', '--priority', '5'], { stdin: 'sk-upstream-two\n', env: FILE_KEY })
    await ok(data.dir, ['keys', 'disable', 'k2'], { env: FILE_KEY })
    await ok(data.dir, ['models', 'add', 'm', '--target', 'up/up-model'], { env: FILE_KEY })
    clientKey = keyFrom((await ok(data.dir, ['clients', 'add', 'app'], { env: FILE_KEY })).stdout)
    proxy = await startTestProxy(data.dir, { env: FILE_KEY })
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  const chat = () => chatThrough(proxy, clientKey)

  it('re-encrypts every key under a new master key, stores the ring new,old, and the running server keeps serving', async () => {
    expect((await chat()).status).toBe(200)
    const [oldKey] = await ringOf(data.dir)

    const rotated = await ok(data.dir, ['secrets', 'rotate-master'], { env: FILE_KEY })
    expect(rotated.stdout).toContain('Re-encrypted 2 upstream key(s)')
    const ring = await ringOf(data.dir)
    expect(ring).toHaveLength(2)
    expect(ring[1]).toBe(oldKey)
    // The key file is where the new key lives: it is never printed.
    expect(rotated.stdout + rotated.stderr).not.toContain(ring[0])
    expect(rotated.stdout + rotated.stderr).not.toContain(oldKey)

    // The new key alone opens every secret (disabled ones too), the old one none.
    const secrets = await storedSecrets(data.dir, ring[0]!)
    expect(secrets.map((s) => createFernet(ring[0]!).decryptString(s))).toEqual(['sk-upstream-one', 'sk-upstream-two'])
    expect(secrets.every((s) => createFernetRing([oldKey!]).keyIndexOf(s) === -1)).toBe(true)

    // The server notices the change, takes the ring from the key file, and decrypts under the new key.
    await eventually(() => proxy.store.masterKey.keys.length, (n) => n === 2)
    expect(proxy.config.current().problems).toEqual([])
    const before = fake.requests.length
    expect((await chat()).status).toBe(200)
    expect(fake.requests.slice(before).map((r) => r.headers.authorization)).toEqual(['Bearer sk-upstream-one'])
  })

  it("doctor counts the secrets under each key of the ring and says the old one can go", async () => {
    const res = await cli(data.dir, ['doctor', '--skip-providers', '--json'], { env: FILE_KEY })
    expect(res.code).toBe(0)
    const checks = (JSON.parse(res.stdout) as { checks: { name: string; ok: boolean; detail: string }[] }).checks
    const newest = checks.find((c) => c.name === 'master key 1 of 2')
    const older = checks.find((c) => c.name === 'master key 2 of 2')
    expect(newest?.detail).toContain('opens 2 stored secret(s)')
    expect(older?.detail).toContain('opens 0 stored secret(s)')
    expect(older?.detail).toContain('drop it from the ring')
    const ring = await ringOf(data.dir)
    expect(res.stdout).not.toContain(ring[0])
    expect(res.stdout).not.toContain(ring[1])
  })
})

describe('proxy secrets rotate-master with PROXY_MASTER_KEY', () => {
  let data: ReturnType<typeof tempDataDir>
  beforeEach(async () => {
    data = tempDataDir()
    await ok(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', 'http://127.0.0.1:9/v1'])
    await ok(data.dir, ['keys', 'add', 'up', '--label', 'k1'], { stdin: 'sk-env-one\n' })
  })
  afterEach(() => data.cleanup())

  it('prints the generated key once, says what to set, and writes no key file', async () => {
    const res = await ok(data.dir, ['secrets', 'rotate-master'])
    const printed = [...res.stdout.matchAll(/[A-Za-z0-9_-]{43}=/g)].map((m) => m[0])
    expect(printed).toHaveLength(1)
    const newKey = printed[0]!
    expect(res.stdout).not.toContain(TEST_MASTER_KEY)
    expect(res.stdout).toContain('PROXY_MASTER_KEY=NEW,$PROXY_MASTER_KEY')
    await expect(readFile(masterKeyPath(data.dir))).rejects.toThrow()

    // The ring new,old opens the store; the old key alone no longer does.
    const [secret] = await storedSecrets(data.dir, `${newKey},${TEST_MASTER_KEY}`)
    expect(createFernet(newKey).decryptString(secret!)).toBe('sk-env-one')
    await expect(openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })).rejects.toThrow(MasterKeyError)
  })

  it('takes the new key from --new-key-from-env and does not print it', async () => {
    const newKey = generateFernetKey()
    const res = await ok(data.dir, ['secrets', 'rotate-master', '--new-key-from-env', 'NEXT_KEY'], { env: { NEXT_KEY: newKey } })
    expect(res.stdout).not.toContain(newKey)
    const [secret] = await storedSecrets(data.dir, `${newKey},${TEST_MASTER_KEY}`)
    expect(createFernet(newKey).decryptString(secret!)).toBe('sk-env-one')
  })

  it('doctor shows secrets still under the old key of a ring as still needed', async () => {
    const newKey = generateFernetKey()
    const res = await cli(data.dir, ['doctor', '--skip-providers', '--json'], { env: { PROXY_MASTER_KEY: `${newKey},${TEST_MASTER_KEY}` } })
    expect(res.code).toBe(0)
    const checks = (JSON.parse(res.stdout) as { checks: { name: string; detail: string }[] }).checks
    expect(checks.find((c) => c.name === 'master key 1 of 2')?.detail).toContain('opens 0 stored secret(s)')
    expect(checks.find((c) => c.name === 'master key 2 of 2')?.detail).toMatch(/opens 1 stored secret\(s\); still needed/)
  })

  it('refuses to start when a stored secret opens with no key of the ring, and changes nothing', async () => {
    const foreign = createFernet(generateFernetKey()).encrypt('sk-lost')
    const store = await openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })
    try {
      await store.db.updateTable('provider_keys').set({ secret: foreign }).execute()
    } finally {
      await store.close()
    }
    const res = await cli(data.dir, ['secrets', 'rotate-master'])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('1 stored upstream key(s) open with no key of the current ring')
    expect(res.stdout).toBe('')
    expect(await storedSecrets(data.dir, TEST_MASTER_KEY)).toEqual([foreign])
  })

  it('refuses a new key that is not a Fernet key, and changes nothing', async () => {
    const res = await cli(data.dir, ['secrets', 'rotate-master', '--new-key-from-env', 'NEXT_KEY'], { env: { NEXT_KEY: 'not-a-key' } })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('not a Fernet key')
    const [secret] = await storedSecrets(data.dir, TEST_MASTER_KEY)
    expect(createFernet(TEST_MASTER_KEY).decryptString(secret!)).toBe('sk-env-one')
  })
})

describe('a server whose master key proxy cannot change', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  it('keeps serving with the secrets it decrypted before, until it is given the new ring', async () => {
    const fake = await startFakeOpenAI()
    const proxy = await startTestProxy(data.dir)
    try {
      await ok(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', fake.url])
      await ok(data.dir, ['keys', 'add', 'up', '--label', 'k1'], { stdin: 'sk-kept\n' })
      await ok(data.dir, ['models', 'add', 'm', '--target', 'up/up-model'])
      const clientKey = keyFrom((await ok(data.dir, ['clients', 'add', 'app'])).stdout)
      await eventually(() => proxy.config.current().routes.has('m'), (has) => has)

      const newKey = generateFernetKey()
      await ok(data.dir, ['secrets', 'rotate-master', '--new-key-from-env', 'NEXT_KEY'], { env: { NEXT_KEY: newKey } })
      await eventually(() => proxy.config.current().problems, (p) => p.some((line) => line.includes('keeps the secret it decrypted before')))
      const res = await chatThrough(proxy, clientKey)
      expect(res.status).toBe(200)
      expect(fake.requests.at(-1)?.headers.authorization).toBe('Bearer sk-kept')
    } finally {
      await proxy.close()
      await fake.close()
    }
  })
})

describe('an interrupted rotate-master', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())
  const COUNT = 60

  it('killed with SIGKILL mid-transaction leaves every secret readable with the ring old+new', async () => {
    await ok(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', 'http://127.0.0.1:9/v1'], { env: FILE_KEY })
    const store = await openStore({ dataDir: data.dir, env: testEnv(data.dir, FILE_KEY), keychain: null })
    try {
      for (let i = 0; i < COUNT; i++) await addKey(store, { provider: 'up', secret: `sk-many-${i}`, label: `k${i}` })
    } finally {
      await store.close()
    }
    const [oldKey] = await ringOf(data.dir)

    // The hook kills the process after re-encrypting (a random) part of the rows, before the commit.
    const killAfter = 1 + Math.floor(Math.random() * (COUNT - 2))
    const child = spawn(process.execPath, [path.resolve('bin/proxy.js'), 'secrets', 'rotate-master'], {
      env: { ...process.env, ...testEnv(data.dir, { ...FILE_KEY, PROXY_TEST_ROTATE_KILL_AFTER: String(killAfter) }) },
      stdio: 'ignore',
    })
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)))
    expect(signal).toBe('SIGKILL')

    const ring = await ringOf(data.dir)
    expect(ring).toEqual([expect.any(String), oldKey])
    const both = createFernetRing(ring)
    const secrets = await storedSecrets(data.dir, ring.join(','))
    expect(secrets).toHaveLength(COUNT)
    expect(secrets.map((s) => both.decryptString(s))).toEqual(Array.from({ length: COUNT }, (_, i) => `sk-many-${i}`))
    // Nothing was committed: each secret is still under the old key.
    expect(secrets.every((s) => both.keyIndexOf(s) === 1)).toBe(true)

    // Run again to the end: everything moves to the newest key, the older ones stay in the ring.
    await ok(data.dir, ['secrets', 'rotate-master'], { env: FILE_KEY })
    const after = await ringOf(data.dir)
    expect(after.slice(1)).toEqual(ring)
    const newest = createFernet(after[0]!)
    expect((await storedSecrets(data.dir, after.join(','))).map((s) => newest.decryptString(s))).toHaveLength(COUNT)
  }, 30_000)
})
