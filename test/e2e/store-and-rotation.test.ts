/**
 * The store on disk: secrets only as Fernet tokens (readable by Python), file modes, refusal of a newer
 * store and of a wrong master key, and key rotation under load with no failed request.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { SQLite } from '../../src/store/sqlite-driver.js'
import { afterAll, describe, expect, it } from 'vitest'
import { generateFernetKey } from '../../src/store/fernet.js'
import { chatCompletion, startFakeOpenAI } from '../fakes/openai-upstream.js'
import { cli, eventually, keyFrom, startTestProxy, tempDataDir, TEST_MASTER_KEY } from '../helpers/proxy.js'

const dirs: Array<{ cleanup: () => void }> = []
function newDataDir() {
  const d = tempDataDir()
  dirs.push(d)
  return d.dir
}
afterAll(() => {
  for (const d of dirs) d.cleanup()
})

function pythonSkipReason(): string | null {
  const probe = spawnSync('python3', ['-c', 'import cryptography'], { encoding: 'utf8', timeout: 20_000 })
  if (probe.error) return `python3 could not be run (${probe.error.message})`
  if (probe.status !== 0) return `python3 cannot import 'cryptography' (${probe.stderr.trim().split('\n').pop() ?? ''})`
  return null
}
const pythonSkip = pythonSkipReason()
if (pythonSkip !== null) console.warn(`[store-and-rotation.test] SKIPPING the Python Fernet check: ${pythonSkip}.`)

/** Every row of every table, for "nothing changed" comparisons. */
function dumpRows(file: string): Record<string, unknown[]> {
  const db = new SQLite(file, { readonly: true })
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>
    return Object.fromEntries(tables.map((t) => [t.name, db.prepare(`SELECT * FROM "${t.name}" ORDER BY rowid`).all()]))
  } finally {
    db.close()
  }
}

describe('secrets at rest', () => {
  const SECRET = 'sk-live-Zq8distinctive0SECRET0value7Xw'
  const dir = newDataDir()
  let token = ''

  it('keeps no plaintext secret in the database file or its WAL', async () => {
    expect((await cli(dir, ['providers', 'add', 'openai', '--type', 'openai'])).code).toBe(0)
    // Hold a read transaction open across the write, so its pages stay in the WAL instead of being
    // checkpointed into the main file when the CLI closes: both files are then really searched.
    const holder = new SQLite(path.join(dir, 'proxy.db'))
    holder.exec('BEGIN')
    holder.prepare('SELECT count(*) FROM providers').get()
    try {
      const added = await cli(dir, ['keys', 'add', 'openai', '--label', 'main'], { stdin: SECRET + '\n' })
      expect(added.code).toBe(0)
      expect(added.stdout + added.stderr).not.toContain(SECRET)
      const reader = new SQLite(path.join(dir, 'proxy.db'), { readonly: true })
      token = (reader.prepare("SELECT secret FROM provider_keys WHERE label = 'main'").get() as { secret: string }).secret
      reader.close()
      expect(token).not.toContain(SECRET)
      expect(token).toMatch(/^gAAAAA[A-Za-z0-9_-]+=*$/)

      const db = readFileSync(path.join(dir, 'proxy.db'))
      const walFile = path.join(dir, 'proxy.db-wal')
      expect(existsSync(walFile)).toBe(true)
      const wal = readFileSync(walFile)
      expect(wal.length).toBeGreaterThan(0)
      // the search itself works: the write, token included, is in the WAL
      expect(wal.includes(token)).toBe(true)
      for (const bytes of [db, wal]) {
        expect(bytes.includes(SECRET)).toBe(false)
        expect(bytes.includes(Buffer.from(SECRET, 'utf16le'))).toBe(false)
        expect(bytes.includes('Zq8distinctive0SECRET')).toBe(false)
      }
    } finally {
      holder.exec('COMMIT')
      holder.close()
    }
    // after the checkpoint too
    expect(readFileSync(path.join(dir, 'proxy.db')).includes(SECRET)).toBe(false)
  })

  it.skipIf(pythonSkip !== null)("stores a token that Python's cryptography.fernet decrypts with the master key", () => {
    const db = new SQLite(path.join(dir, 'proxy.db'), { readonly: true })
    const row = db.prepare("SELECT secret FROM provider_keys WHERE label = 'main'").get() as { secret: string }
    db.close()
    const run = spawnSync(
      'python3',
      ['-c', "import os, sys\nfrom cryptography.fernet import Fernet\nsys.stdout.write(Fernet(os.environ['K'].encode()).decrypt(os.environ['T'].encode()).decode())\n"],
      { env: { ...process.env, K: TEST_MASTER_KEY, T: row.secret }, encoding: 'utf8', timeout: 20_000 },
    )
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    expect(run.stdout).toBe(SECRET)
  })
})

describe('files and versions', () => {
  it('creates the data directory 0700 and the store 0600', async () => {
    const parent = newDataDir()
    const dir = path.join(parent, 'nested', 'proxy-data')
    const res = await cli(dir, ['providers', 'ls'])
    expect(res.code).toBe(0)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(path.join(dir, 'proxy.db')).mode & 0o777).toBe(0o600)
    for (const extra of ['proxy.db-wal', 'proxy.db-shm']) {
      const file = path.join(dir, extra)
      if (existsSync(file)) expect(statSync(file).mode & 0o077).toBe(0)
    }
  })

  it('refuses a store written by a newer version, through the CLI', async () => {
    const dir = newDataDir()
    expect((await cli(dir, ['providers', 'add', 'm', '--type', 'mock'])).code).toBe(0)
    const db = new SQLite(path.join(dir, 'proxy.db'))
    db.prepare('INSERT INTO kysely_migration (name, timestamp) VALUES (?, ?)').run('9999_future', new Date().toISOString())
    db.close()
    const before = dumpRows(path.join(dir, 'proxy.db'))

    for (const args of [['providers', 'ls'], ['models', 'add', 'x', '--target', 'm/x'], ['serve', '--port', '0']]) {
      const res = await cli(dir, args)
      expect(res.code, args.join(' ')).not.toBe(0)
      expect(res.stderr).toContain('newer version of proxy')
      expect(res.stderr).toContain('9999_future')
      expect(res.stderr).not.toMatch(/\n\s+at /) // a message, not a stack trace
      expect(res.stdout).toBe('')
    }
    expect(dumpRows(path.join(dir, 'proxy.db'))).toEqual(before)
  })

  it('refuses a wrong PROXY_MASTER_KEY on an existing store, and changes nothing', async () => {
    const dir = newDataDir()
    expect((await cli(dir, ['providers', 'add', 'openai', '--type', 'openai'])).code).toBe(0)
    expect((await cli(dir, ['keys', 'add', 'openai', '--label', 'main'], { stdin: 'sk-original-secret-1' })).code).toBe(0)
    const before = dumpRows(path.join(dir, 'proxy.db'))
    const wrong = generateFernetKey()

    for (const [args, stdin] of [
      [['keys', 'ls'], undefined],
      [['keys', 'add', 'openai', '--label', 'other'], 'sk-new-secret-2'],
      [['keys', 'rotate', 'main'], 'sk-new-secret-3'],
      [['clients', 'add', 'sneaky'], undefined],
    ] as Array<[string[], string | undefined]>) {
      const res = await cli(dir, args, { env: { PROXY_MASTER_KEY: wrong }, stdin })
      expect(res.code, args.join(' ')).not.toBe(0)
      expect(res.stderr).toContain('PROXY_MASTER_KEY')
      expect(res.stderr).toMatch(/does not match/)
      expect(res.stderr).not.toContain(wrong)
      expect(res.stderr).not.toContain(TEST_MASTER_KEY)
      expect(res.stdout).toBe('')
    }
    expect(dumpRows(path.join(dir, 'proxy.db'))).toEqual(before)
    expect(existsSync(path.join(dir, 'master.key'))).toBe(false)
    // and the right key still works
    const ls = await cli(dir, ['keys', 'ls', '--json'])
    expect(ls.code).toBe(0)
    expect(JSON.parse(ls.stdout).map((k: { label: string }) => k.label)).toEqual(['main'])
  })

  it('refuses to serve with a wrong master key', async () => {
    const dir = newDataDir()
    expect((await cli(dir, ['providers', 'add', 'm', '--type', 'mock'])).code).toBe(0)
    const res = await cli(dir, ['serve', '--port', '0'], { env: { PROXY_MASTER_KEY: generateFernetKey() } })
    expect(res.code).not.toBe(0)
    expect(res.stderr).toMatch(/does not match/)
  })
})

describe('keys rotate under load', () => {
  const OLD = 'sk-old-secret-rotation-1111'
  const NEW = 'sk-new-secret-rotation-2222'

  it('switches keys with zero failed requests, and within a second only the new key is used', async () => {
    const dir = newDataDir()
    const fake = await startFakeOpenAI()
    const seen: Array<{ at: number; auth: string | undefined }> = []
    fake.respond((req) => {
      seen.push({ at: performance.now(), auth: req.headers.authorization })
      // a little upstream latency, so requests are in flight when the key changes
      return { kind: 'json', body: chatCompletion(req.body.model, 'ok'), delayMs: 25 }
    })
    expect((await cli(dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', fake.url])).code).toBe(0)
    expect((await cli(dir, ['keys', 'add', 'up', '--label', 'main'], { stdin: OLD })).code).toBe(0)
    expect((await cli(dir, ['models', 'add', 'm', '--target', 'up/x'])).code).toBe(0)
    const clientKey = keyFrom((await cli(dir, ['clients', 'add', 'app'])).stdout)
    const proxy = await startTestProxy(dir)
    try {
      const failures: string[] = []
      let ok = 0
      let stopAt = Infinity
      const loop = async (n: number) => {
        for (let i = 0; performance.now() < stopAt; i++) {
          const stream = (n + i) % 3 === 0
          try {
            const res = await fetch(`${proxy.url}/v1/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${clientKey}`, 'content-type': 'application/json' },
              body: JSON.stringify({ model: 'm', stream, messages: [{ role: 'user', content: `loop ${n} #${i}` }] }),
            })
            const text = await res.text()
            if (res.status !== 200) failures.push(`${res.status} ${text}`)
            else if (stream && !text.includes('data: [DONE]')) failures.push(`truncated stream: ${text}`)
            else ok++
          } catch (err) {
            failures.push(String(err))
          }
        }
      }
      const loops = [0, 1, 2, 3].map(loop)
      await eventually(() => seen.length, (n) => n >= 8)
      const rotated = await cli(dir, ['keys', 'rotate', 'main', '--provider', 'up'], { stdin: NEW + '\n' })
      expect(rotated.stderr).toBe('')
      expect(rotated.code).toBe(0)
      const rotatedAt = performance.now()
      stopAt = rotatedAt + 1500
      await Promise.all(loops)

      expect(failures).toEqual([])
      expect(ok).toBeGreaterThan(30)
      const before = seen.filter((s) => s.at < rotatedAt)
      expect(before.length).toBeGreaterThanOrEqual(8)
      expect(before.every((s) => s.auth === `Bearer ${OLD}`)).toBe(true)
      const settled = seen.filter((s) => s.at > rotatedAt + 1000)
      expect(settled.length).toBeGreaterThan(5)
      expect(settled.filter((s) => s.auth !== `Bearer ${NEW}`)).toEqual([])
      // the switch itself is quick, not merely within the second
      const firstNew = seen.find((s) => s.auth === `Bearer ${NEW}`)!
      expect(firstNew.at - rotatedAt).toBeLessThan(1000)

      const keys = JSON.parse((await cli(dir, ['keys', 'ls', '--all', '--json'])).stdout) as Array<{ label: string; state: string }>
      expect(keys.map((k) => k.state).sort()).toEqual(['active', 'retired'])
    } finally {
      await proxy.close()
      await fake.close()
    }
  })
})
