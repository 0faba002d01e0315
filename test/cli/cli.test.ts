/**
 * The CLI, command group by command group: the happy path and the error path of each, run in-process
 * through `run` (as the binary does), plus the built binary itself as a child process.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databasesPerDir, STORE_BACKENDS } from '../helpers/postgres.js'
import { cli, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'

/** Response bodies in tests are checked field by field; `unknown` would need a cast at every use. */
const readJson = (res: Response): Promise<any> => res.json()

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const VERSION = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version

const dirs: Array<{ cleanup: () => void }> = []
/** the PostgreSQL database (if any) each data dir's commands use */
const storeOf = new Map<string, ReturnType<typeof databasesPerDir>>()
function newDataDir(stores?: ReturnType<typeof databasesPerDir>): string {
  const d = tempDataDir()
  dirs.push(d)
  if (stores) storeOf.set(d.dir, stores)
  return d.dir
}
const withStoreEnv = async (dir: string, opts: Parameters<typeof cli>[2] = {}): Promise<Parameters<typeof cli>[2]> => ({ ...opts, env: { ...(await storeOf.get(dir)?.env(dir)), ...opts?.env } })
afterAll(() => {
  for (const d of dirs) d.cleanup()
})

async function ok(dir: string, args: string[], opts: Parameters<typeof cli>[2] = {}) {
  const res = await cli(dir, args, await withStoreEnv(dir, opts))
  expect(res.stderr, `${args.join(' ')} wrote to stderr`).toBe('')
  expect(res.code, args.join(' ')).toBe(0)
  return res
}

async function fails(dir: string, args: string[], opts: Parameters<typeof cli>[2] = {}) {
  const res = await cli(dir, args, await withStoreEnv(dir, opts))
  expect(res.code, `${args.join(' ')} should fail`).not.toBe(0)
  expect(res.stderr.trim().length).toBeGreaterThan(0)
  // a message for a person, not a stack trace
  expect(res.stderr).not.toMatch(/\n\s+at [^\n]+:\d+:\d+/)
  return res
}

const json = <T = any>(text: string): T => JSON.parse(text) as T

// The command groups that read and write the store, on both backends.
describe.each(STORE_BACKENDS)('on %s', (backend) => {
  const stores = databasesPerDir(backend)
  afterAll(() => stores.dropAll())

  describe('providers', () => {
    const dir = newDataDir(stores)

    it('adds, lists and removes providers', async () => {
      const added = await ok(dir, ['providers', 'add', 'openai', '--type', 'openai', '--json'])
      expect(json(added.stdout)).toMatchObject({ name: 'openai', type: 'openai', baseUrl: null, enabled: true, keys: 0 })
      const text = await ok(dir, ['providers', 'add', 'local', '--type', 'openai-compatible', '--base-url', 'http://127.0.0.1:1234/v1', '--setting', 'headers.X-Org=acme', '--setting', 'stream_usage=false'])
      expect(text.stdout).toContain("Added provider 'local'")
      expect(text.stdout).toContain('proxy keys add local')

      const ls = json<Array<{ name: string; settings: Record<string, unknown> }>>((await ok(dir, ['providers', 'ls', '--json'])).stdout)
      expect(ls.map((p) => p.name)).toEqual(['local', 'openai'])
      expect(ls[0]!.settings).toEqual({ headers: { 'X-Org': 'acme' }, stream_usage: false })
      const table = (await ok(dir, ['providers', 'ls'])).stdout
      expect(table).toMatch(/^NAME\s+TYPE/m)
      expect(table).toContain('http://127.0.0.1:1234/v1')
      // header values may be credentials: the listing names the header, not its value
      expect(table).not.toContain('acme')

      expect((await ok(dir, ['providers', 'rm', 'local'])).stdout).toContain("Removed provider 'local'")
      expect(json((await ok(dir, ['providers', 'ls', '--json'])).stdout)).toHaveLength(1)
    })

    it('says how to start when there are none', async () => {
      expect((await ok(newDataDir(stores), ['providers', 'ls'])).stdout).toContain('proxy providers add')
    })

    it('refuses bad input with a message', async () => {
      expect((await fails(dir, ['providers', 'add', 'openai', '--type', 'openai'])).stderr).toContain('already exists')
      expect((await fails(dir, ['providers', 'add', 'x', '--type', 'nonsense'])).stderr).toMatch(/nonsense/)
      expect((await fails(dir, ['providers', 'add', 'x'])).stderr).toContain('--type')
      expect((await fails(dir, ['providers', 'add', 'x', '--type', 'openai', '--base-url', 'ftp://host/v1'])).stderr).toContain('http')
      expect((await fails(dir, ['providers', 'add', 'x', '--type', 'openai', '--base-url', 'not a url'])).stderr).toContain('not a URL')
      expect((await fails(dir, ['providers', 'add', 'bad name!', '--type', 'mock'])).stderr).toContain('not valid')
      expect((await fails(dir, ['providers', 'rm', 'ghost'])).stderr).toContain("No provider named 'ghost'")
    })

    it('refuses to remove a provider that a route still uses, naming the model', async () => {
      await ok(dir, ['providers', 'add', 'used', '--type', 'mock'])
      await ok(dir, ['models', 'add', 'needs-used', '--target', 'used/m1'])
      const res = await fails(dir, ['providers', 'rm', 'used'])
      expect(res.stderr).toContain('needs-used')
      expect(res.stderr).toContain('proxy models rm')
      expect(json<Array<{ name: string }>>((await ok(dir, ['providers', 'ls', '--json'])).stdout).map((p) => p.name)).toContain('used')
      await ok(dir, ['models', 'rm', 'needs-used'])
      await ok(dir, ['providers', 'rm', 'used'])
    })
  })

  describe('keys', () => {
    const dir = newDataDir(stores)
    const SECRET = 'sk-test-keys-secret-0123456789'

    beforeAll(async () => {
      await ok(dir, ['providers', 'add', 'openai', '--type', 'openai'])
      await ok(dir, ['providers', 'add', 'groq', '--type', 'openai-compatible', '--base-url', 'http://127.0.0.1:9/v1'])
    })

    it('adds a key from stdin and never prints the secret', async () => {
      const res = await ok(dir, ['keys', 'add', 'openai', '--label', 'main'], { stdin: `${SECRET}\n` })
      expect(res.stdout).toContain("Added key 'main'")
      expect(res.stdout).not.toContain(SECRET)
    })

    it('adds a key from --from-env, with a default label', async () => {
      const res = await ok(dir, ['keys', 'add', 'openai', '--from-env', 'MY_KEY', '--priority', '2', '--json'], { env: { MY_KEY: 'sk-from-env-value-42' } })
      const key = json(res.stdout)
      expect(key).toMatchObject({ provider: 'openai', label: 'key-1', priority: 2, weight: 1, state: 'active' })
      expect(res.stdout).not.toContain('sk-from-env-value-42')
      expect(JSON.stringify(key)).not.toMatch(/secret/i)
    })

    it('refuses an empty secret, a missing variable and an unknown provider', async () => {
      expect((await fails(dir, ['keys', 'add', 'openai'], { stdin: '' })).stderr).toContain('No secret given')
      expect((await fails(dir, ['keys', 'add', 'openai'], { stdin: '  \n' })).stderr).toContain('No secret given')
      expect((await fails(dir, ['keys', 'add', 'openai', '--from-env', 'NOT_SET_ANYWHERE'])).stderr).toContain('NOT_SET_ANYWHERE')
      expect((await fails(dir, ['keys', 'add', 'nope'], { stdin: 'sk-x-123456' })).stderr).toContain("No provider named 'nope'")
      expect((await fails(dir, ['keys', 'add', 'openai', '--label', 'main'], { stdin: 'sk-dup-123456' })).stderr).toContain('already has a key')
      expect((await fails(dir, ['keys', 'add', 'openai', '--priority', 'high'], { stdin: 'sk-x-123456' })).stderr).toContain('--priority')
    })

    it('lists keys without their secrets, as a table and as JSON', async () => {
      const res = await ok(dir, ['keys', 'ls', '--json'])
      const keys = json<Array<Record<string, unknown>>>(res.stdout)
      expect(keys.map((k) => k.label).sort()).toEqual(['key-1', 'main'])
      expect(res.stdout).not.toContain(SECRET)
      expect(res.stdout).not.toContain('sk-from-env-value-42')
      expect(res.stdout).not.toContain('gAAAAA') // not even the encrypted token
      for (const k of keys) expect(Object.keys(k)).not.toContain('secret')
      const table = await ok(dir, ['keys', 'ls'])
      expect(table.stdout).toMatch(/^ID\s+PROVIDER\s+LABEL/m)
      expect(table.stdout).not.toContain(SECRET)
      expect(json((await ok(dir, ['keys', 'ls', '--provider', 'groq', '--json'])).stdout)).toEqual([])
      await fails(dir, ['keys', 'ls', '--provider', 'ghost'])
    })

    it('rotates a key by label and by id, retiring the old one', async () => {
      const byLabel = json((await ok(dir, ['keys', 'rotate', 'main', '--json'], { stdin: 'sk-rotated-one-111' })).stdout)
      expect(byLabel.retired).toMatchObject({ label: 'main', state: 'retired' })
      expect(byLabel.key).toMatchObject({ label: 'main', state: 'active' })
      expect(byLabel.key.id).not.toBe(byLabel.retired.id)

      const text = await ok(dir, ['keys', 'rotate', String(byLabel.key.id)], { stdin: 'sk-rotated-two-222' })
      expect(text.stdout).toContain(`old id ${byLabel.key.id} retired`)
      expect(text.stdout).not.toContain('sk-rotated-two-222')

      const live = json<Array<{ label: string; state: string }>>((await ok(dir, ['keys', 'ls', '--json'])).stdout)
      expect(live.filter((k) => k.label === 'main')).toHaveLength(1)
      const all = json<Array<{ label: string; state: string }>>((await ok(dir, ['keys', 'ls', '--all', '--json'])).stdout)
      expect(all.filter((k) => k.label === 'main').map((k) => k.state).sort()).toEqual(['active', 'retired', 'retired'])

      await fails(dir, ['keys', 'rotate', 'main'], { stdin: '' })
      expect((await fails(dir, ['keys', 'rotate', 'ghost'], { stdin: 'sk-x-123456' })).stderr).toContain("'ghost'")
    })

    it('refuses a label used by several providers unless --provider says which', async () => {
      await ok(dir, ['keys', 'add', 'groq', '--label', 'main'], { stdin: 'sk-groq-main-333' })
      const res = await fails(dir, ['keys', 'rotate', 'main'], { stdin: 'sk-new-444444' })
      expect(res.stderr).toContain('--provider')
      expect(res.stderr).toContain('groq')
      expect(res.stderr).toContain('openai')
      expect((await fails(dir, ['keys', 'rm', 'main'])).stderr).toContain('--provider')

      const rotated = json((await ok(dir, ['keys', 'rotate', 'main', '--provider', 'groq', '--json'], { stdin: 'sk-new-444444' })).stdout)
      expect(rotated.key.provider).toBe('groq')
      const removed = await ok(dir, ['keys', 'rm', 'main', '--provider', 'groq'])
      expect(removed.stdout).toContain("of provider 'groq'")
      expect(json((await ok(dir, ['keys', 'ls', '--provider', 'groq', '--json'])).stdout)).toEqual([])
    })
  })

  describe('models', () => {
    const dir = newDataDir(stores)
    beforeAll(async () => {
      await ok(dir, ['providers', 'add', 'a', '--type', 'mock'])
      await ok(dir, ['providers', 'add', 'b', '--type', 'mock'])
    })

    it('adds, lists, replaces and removes routes', async () => {
      const added = json((await ok(dir, ['models', 'add', 'smart', '--target', 'a/big', '--target', 'b/org/model-v2', '--json'])).stdout)
      expect(added).toMatchObject({ model: 'smart', policy: null })
      expect(added.targets).toEqual([
        { provider: 'a', upstreamModel: 'big', weight: 1 },
        { provider: 'b', upstreamModel: 'org/model-v2', weight: 1 },
      ])
      expect((await ok(dir, ['models', 'add', 'fast', '--target', 'b/small'])).stdout).toContain("Model 'fast' -> b/small")

      const table = (await ok(dir, ['models', 'ls'])).stdout
      expect(table).toMatch(/^MODEL\s+TARGETS/m)
      expect(table).toContain('a/big > b/org/model-v2')

      expect((await fails(dir, ['models', 'add', 'smart', '--target', 'b/other'])).stderr).toContain('--replace')
      const replaced = json((await ok(dir, ['models', 'add', 'smart', '--target', 'b/other', '--replace', '--json'])).stdout)
      expect(replaced.targets).toEqual([{ provider: 'b', upstreamModel: 'other', weight: 1 }])

      await ok(dir, ['models', 'rm', 'fast'])
      expect(json<Array<{ model: string }>>((await ok(dir, ['models', 'ls', '--json'])).stdout).map((r) => r.model)).toEqual(['smart'])
    })

    it('refuses bad routes', async () => {
      expect((await fails(dir, ['models', 'add', 'x', '--target', 'no-slash'])).stderr).toContain('<provider>/<upstream-model>')
      expect((await fails(dir, ['models', 'add', 'x', '--target', 'ghost/m'])).stderr).toContain("No provider named 'ghost'")
      expect((await fails(dir, ['models', 'add', 'x'])).stderr).toContain('--target')
      expect((await fails(dir, ['models', 'rm', 'never-added'])).stderr).toContain('never-added')
      expect(json<Array<{ model: string }>>((await ok(dir, ['models', 'ls', '--json'])).stdout).map((r) => r.model)).not.toContain('x')
    })
  })

  describe('clients', () => {
    const dir = newDataDir(stores)

    it('adds a client and prints its key once', async () => {
      const text = await ok(dir, ['clients', 'add', 'my-app'])
      const key = keyFrom(text.stdout)
      expect(text.stdout).toContain('shown only this once')
      const ls = await ok(dir, ['clients', 'ls', '--json'])
      expect(ls.stdout).not.toContain(key)
      const [client] = json<Array<Record<string, unknown>>>(ls.stdout)
      expect(client).toMatchObject({ name: 'my-app', role: 'user', models: null, status: 'active', expiresAt: null })
      expect(key.startsWith(String(client!.keyPrefix).replace('…', ''))).toBe(true)
      expect((await ok(dir, ['clients', 'ls'])).stdout).not.toContain(key)
    })

    it('adds with --json, --role, --models and --expires 30d', async () => {
      const before = Date.now()
      const added = json((await ok(dir, ['clients', 'add', 'ci', '--role', 'admin', '--models', 'a, b', '--expires', '30d', '--json'])).stdout)
      expect(added).toMatchObject({ name: 'ci', role: 'admin', models: ['a', 'b'], status: 'active' })
      expect(added.key).toMatch(/^sk-proxy-[A-Za-z0-9]{20,}$/)
      const expires = Date.parse(added.expiresAt)
      const thirtyDays = 30 * 86_400_000
      expect(expires).toBeGreaterThanOrEqual(before + thirtyDays)
      expect(expires).toBeLessThanOrEqual(Date.now() + thirtyDays)
      const dated = json((await ok(dir, ['clients', 'add', 'dated', '--expires', '2999-01-31', '--json'])).stdout)
      expect(dated.expiresAt).toBe('2999-01-31T00:00:00.000Z')
    })

    it('refuses a bad --expires, a bad role and a duplicate name', async () => {
      expect((await fails(dir, ['clients', 'add', 'x', '--expires', 'soon'])).stderr).toContain("not 'soon'")
      expect((await fails(dir, ['clients', 'add', 'x', '--expires', '0d'])).stderr).toContain('--expires')
      expect((await fails(dir, ['clients', 'add', 'x', '--expires', '2001-01-01'])).stderr).toContain('in the past')
      expect((await fails(dir, ['clients', 'add', 'x', '--role', 'root'])).stderr).toContain('root')
      expect((await fails(dir, ['clients', 'add', 'my-app'])).stderr).toContain('already exists')
      expect(json<Array<{ name: string }>>((await ok(dir, ['clients', 'ls', '--json'])).stdout).map((c) => c.name)).not.toContain('x')
    })

    it('rotates and revokes', async () => {
      const first = json((await ok(dir, ['clients', 'add', 'rot', '--json'])).stdout)
      const rotated = json((await ok(dir, ['clients', 'rotate', 'rot', '--json'])).stdout)
      expect(rotated.key).toMatch(/^sk-proxy-/)
      expect(rotated.key).not.toBe(first.key)
      expect(rotated.keyPrefix).not.toBe(first.keyPrefix)
      const text = await ok(dir, ['clients', 'rotate', 'rot'])
      expect(keyFrom(text.stdout)).not.toBe(rotated.key)

      expect((await ok(dir, ['clients', 'revoke', 'rot'])).stdout).toContain("Revoked client 'rot'")
      const ls = json<Array<{ name: string; status: string; revokedAt: string | null }>>((await ok(dir, ['clients', 'ls', '--json'])).stdout)
      expect(ls.find((c) => c.name === 'rot')).toMatchObject({ status: 'revoked' })
      expect(ls.find((c) => c.name === 'rot')!.revokedAt).not.toBeNull()
      expect((await fails(dir, ['clients', 'rotate', 'rot'])).stderr).toContain('revoked')
      expect((await fails(dir, ['clients', 'revoke', 'ghost'])).stderr).toContain("No client named 'ghost'")
      expect((await fails(dir, ['clients', 'rotate', 'ghost'])).stderr).toContain("No client named 'ghost'")
    })
  })

  describe('policy', () => {
    const dir = newDataDir(stores)

    it('stores a policy from a file and shows it with defaults filled in', async () => {
      const file = path.join(dir, 'policy.json')
      writeFileSync(file, JSON.stringify({ keys: { strategy: 'priority' }, retry: { max_attempts: 4 } }))
      expect((await ok(dir, ['policy', 'set', 'global', '--file', file])).stdout).toContain("Stored policy 'global'")
      const shown = json((await ok(dir, ['policy', 'show', 'global'])).stdout)
      expect(shown).toMatchObject({ name: 'global', stored: true })
      expect(shown.policy.keys.strategy).toBe('priority')
      expect(shown.policy.retry.max_attempts).toBe(4)
      // defaults for what the document left out
      expect(shown.policy.retry.backoff_ms).toEqual({ base: 200, max: 5000 })
      expect(shown.policy.timeouts_ms.total).toBeGreaterThan(0)
      expect(shown.policy.fallback.other_keys).toBe(true)
      const raw = json((await ok(dir, ['policy', 'show', 'global', '--raw'])).stdout)
      expect(raw.policy).toEqual({ keys: { strategy: 'priority' }, retry: { max_attempts: 4 } })
    })

    it('stores a policy from stdin, layered over global when shown', async () => {
      await ok(dir, ['policy', 'set', 'slow', '--file', '-'], { stdin: '{"timeouts_ms":{"first_byte":90000}}' })
      const shown = json((await ok(dir, ['policy', 'show', 'slow'])).stdout)
      expect(shown.policy.timeouts_ms.first_byte).toBe(90000)
      expect(shown.policy.keys.strategy).toBe('priority')
      const all = json<Array<{ name: string }>>((await ok(dir, ['policy', 'show'])).stdout)
      expect(all.map((p) => p.name)).toEqual(['global', 'slow'])
    })

    it('shows the defaults when nothing is stored', async () => {
      const fresh = newDataDir(stores)
      const shown = json((await ok(fresh, ['policy', 'show', 'global'])).stdout)
      expect(shown.stored).toBe(false)
      expect(shown.policy.retry.max_attempts).toBeGreaterThanOrEqual(1)
      expect((await ok(fresh, ['policy', 'show'])).stdout).toContain('defaults apply')
    })

    it('refuses a bad field, naming its path, and stores nothing', async () => {
      const typo = await fails(dir, ['policy', 'set', 'bad', '--file', '-'], { stdin: '{"retry":{"max_attempts":"three"}}' })
      expect(typo.stderr).toContain('retry.max_attempts')
      const unknown = await fails(dir, ['policy', 'set', 'bad', '--file', '-'], { stdin: '{"retry":{"maxAttempts":3}}' })
      expect(unknown.stderr).toContain('retry')
      expect(unknown.stderr).toContain('maxAttempts')
      const notJson = await fails(dir, ['policy', 'set', 'bad', '--file', '-'], { stdin: '{retry' })
      expect(notJson.stderr).toContain('not valid JSON')
      const missing = await fails(dir, ['policy', 'set', 'bad', '--file', path.join(dir, 'nope.json')])
      expect(missing.stderr).toContain('no such file')
      expect((await fails(dir, ['policy', 'show', 'bad'])).stderr).toContain("'bad'")
    })
  })
})

describe('the program', () => {
  const dir = newDataDir()

  it('prints its version', async () => {
    const res = await ok(dir, ['--version'])
    expect(res.stdout.trim()).toBe(VERSION)
  })

  it('shows examples in a subcommand help', async () => {
    for (const args of [['keys', 'add', '--help'], ['clients', 'add', '--help'], ['models', 'add', '--help'], ['providers', 'add', '--help'], ['serve', '--help']]) {
      const res = await ok(dir, args)
      expect(res.stdout, args.join(' ')).toContain('Examples:')
      expect(res.stdout).toContain('Usage: proxy')
    }
    expect((await ok(dir, ['--help'])).stdout).toContain('proxy serve --demo')
  })

  it('refuses an unknown command or option', async () => {
    await fails(dir, ['frobnicate'])
    await fails(dir, ['providers', 'ls', '--no-such-flag'])
  })

  it('says what is wrong with a data directory it cannot use, and leaves what is there alone', async () => {
    const file = path.join(dir, 'a-file')
    writeFileSync(file, 'kept')
    const onFile = await fails(dir, ['keys', 'ls', '--data-dir', file])
    expect(onFile.stderr).toBe(`error: Cannot use ${file} as the data directory (it is a file). Choose another with --data-dir or PROXY_DATA_DIR.\n`)
    const below = await fails(dir, ['providers', 'ls'], { env: { PROXY_DATA_DIR: path.join(file, 'data') } })
    expect(below.stderr).toContain('(a folder above it is a file)')
    expect(readFileSync(file, 'utf8')).toBe('kept')
  })
})

describe('the built binary', () => {
  const bin = path.join(repoRoot, 'bin', 'proxy.js')
  const built = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js')
  const requireBuild = () => {
    if (!existsSync(built)) throw new Error(`${built} does not exist: run 'npm run build' before this test.`)
  }
  const env = (dir: string) => ({ PATH: process.env.PATH ?? '', ...testEnv(dir) })

  it('prints its version', () => {
    requireBuild()
    const res = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: env(newDataDir()), timeout: 20_000 })
    expect(res.status).toBe(0)
    expect(res.stdout.trim()).toBe(VERSION)
  })

  it('adds a client with --json', () => {
    requireBuild()
    const dir = newDataDir()
    const res = spawnSync(process.execPath, [bin, 'clients', 'add', 'x', '--json'], { encoding: 'utf8', env: env(dir), timeout: 20_000 })
    expect(res.stderr).toBe('')
    expect(res.status).toBe(0)
    const client = json(res.stdout)
    expect(client).toMatchObject({ name: 'x', role: 'user', status: 'active' })
    expect(client.key).toMatch(/^sk-proxy-/)
    const again = spawnSync(process.execPath, [bin, 'clients', 'add', 'x'], { encoding: 'utf8', env: env(dir), timeout: 20_000 })
    expect(again.status).not.toBe(0)
    expect(again.stderr).toContain('already exists')
  })

  it('refuses a --host it cannot listen on with one line that names the option', () => {
    requireBuild()
    const dir = newDataDir()
    // 192.0.2.1 is a documentation address (RFC 5737), no machine's own; .invalid never resolves (RFC 6761)
    for (const [host, why] of [['192.0.2.1', 'no network interface of this machine has that address'], ['proxy-test-host.invalid', 'the host name does not resolve']]) {
      const res = spawnSync(process.execPath, [bin, 'serve', '--host', host!, '--port', '0'], { encoding: 'utf8', env: env(dir), timeout: 30_000 })
      expect(res.status, res.stderr).toBe(1)
      expect(res.stderr).toContain(why)
      expect(res.stderr).toContain('--host')
      expect(res.stderr).not.toMatch(/\n\s+at [^\n]+:\d+:\d+/)
    }
  })

  it('serves --demo on port 0, answers, and exits 0 on SIGTERM', async () => {
    requireBuild()
    const dir = newDataDir()
    const child = spawn(process.execPath, [bin, 'serve', '--demo', '--port', '0'], { env: env(dir), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let stdout = ''
    child.stdout.on('data', (d) => (stdout += d))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const banner = await new Promise<{ url: string; key: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner within 15 s; stderr so far:\n${stderr}`)), 15_000)
        child.stderr.on('data', (d) => {
          stderr += d
          const url = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(stderr)
          const key = /sk-proxy-[A-Za-z0-9]+/.exec(stderr)
          if (url && key && url[2] !== '0') {
            clearTimeout(timer)
            resolve({ url: url[1]!, key: key[0] })
          }
        })
        child.on('exit', (code) => reject(new Error(`serve exited with ${code} before its banner:\n${stderr}`)))
      })
      const res = await fetch(`${banner.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${banner.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] }),
      })
      expect(res.status).toBe(200)
      const body = await readJson(res)
      expect(body.choices[0].message.content).toContain('Hello')
      const requestId = res.headers.get('x-request-id')!
      const models = await readJson(await fetch(`${banner.url}/v1/models`, { headers: { authorization: `Bearer ${banner.key}` } }))
      expect(models.data.map((m: { id: string }) => m.id)).toContain('gpt-4o-mini')

      child.kill('SIGTERM')
      expect(await exited).toBe(0)
      // one log line per request on stdout, and no client key in the logs
      expect(stdout).toContain(requestId)
      expect(stdout).not.toContain(banner.key)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  }, 30_000)
})
