/**
 * Two real `proxy serve` processes on one PostgreSQL database and one Redis, each with a data dir of its
 * own, behave as one proxy: a key rotated or a route changed through one instance's admin API, a client
 * revoked or a circuit opened through the CLI, is served by both (times are printed); `proxy usage` and
 * `proxy audit ls` count both instances' traffic once; `proxy top` names the instance it watches.
 */
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { cli, eventually, keyFrom, tempDataDir } from '../helpers/proxy.js'
import { assertRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/matrix.js'
import { assertBuilt, spawnServe, type ServeProcess } from '../limits/serve-process.js'

const MODEL = 'gpt-4o-mini'

describe('two proxy serve processes on one PostgreSQL and one Redis', () => {
  const dirs = [tempDataDir(), tempDataDir(), tempDataDir()]
  const cliDir = dirs[2]!.dir
  const prefix = uniquePrefix('fleet')
  let database: TestDatabase
  let upstream: FakeUpstream
  const instances: ServeProcess[] = []
  let env: Record<string, string> = {}
  let appKey = ''
  let victimKey = ''
  let adminKey = ''
  /** requests each instance answered (any status), to compare with the store's counts */
  const sent = [0, 0]

  const sdk = (i: number, key = appKey) => new OpenAI({ apiKey: key, baseURL: `${instances[i]!.url}/v1`, maxRetries: 0 })
  const ask = async (i: number, key = appKey): Promise<{ status: number; content?: string }> => {
    sent[i]!++
    try {
      const r = await sdk(i, key).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      return { status: 200, content: r.choices[0]?.message.content ?? '' }
    } catch (err) {
      if (err instanceof OpenAI.APIError) return { status: err.status ?? 0 }
      throw err
    }
  }
  const admin = (i: number, path: string, body: unknown) =>
    fetch(`${instances[i]!.url}/admin/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const run = async (args: string[], stdin?: string) => {
    const r = await cli(cliDir, args, { env, ...(stdin === undefined ? {} : { stdin }) })
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0)
    return r
  }
  /** until `ok` holds on each instance: how long each took after `since` */
  const servedByBoth = async (since: number, probe: (i: number) => Promise<boolean>): Promise<number[]> =>
    Promise.all(
      [0, 1].map(async (i) => {
        await eventually(() => probe(i), Boolean, 5000)
        return Date.now() - since
      }),
    )
  const lastUpstreamAuth = () => upstream.requests.at(-1)?.headers.authorization
  const lastUpstreamModel = () => upstream.requests.at(-1)?.body?.model

  beforeAll(async () => {
    assertBuilt()
    await assertRedis()
    database = await createTestDatabase()
    upstream = await startFakeOpenAI()
    env = { PROXY_DATABASE_URL: database.url, PROXY_REDIS_URL: TEST_REDIS_URL, PROXY_REDIS_PREFIX: prefix }
    await run(['providers', 'add', 'up', '--type', 'openai-compatible', '--base-url', `${upstream.url}/v1`])
    await run(['keys', 'add', 'up', '--label', 'main'], 'sk-upstream-old-0001')
    await run(['models', 'add', MODEL, '--target', `up/${MODEL}`])
    appKey = keyFrom((await run(['clients', 'add', 'app'])).stdout)
    victimKey = keyFrom((await run(['clients', 'add', 'victim'])).stdout)
    adminKey = keyFrom((await run(['clients', 'add', 'ops', '--role', 'admin'])).stdout)
    instances.push(...(await Promise.all([spawnServe(dirs[0]!.dir, env), spawnServe(dirs[1]!.dir, env)])))
  }, 60_000)

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()))
    await upstream?.close()
    await database?.drop()
    await deleteKeys(TEST_REDIS_URL, prefix)
    for (const d of dirs) d.cleanup()
  })

  it('both serve with the stored key at first', async () => {
    for (const i of [0, 1]) {
      expect(await ask(i)).toEqual({ status: 200, content: 'Hello from fake' })
      expect(lastUpstreamAuth()).toBe('Bearer sk-upstream-old-0001')
    }
  })

  it('a key rotated through one instance’s admin API is used by both', async () => {
    const since = Date.now()
    expect((await admin(0, '/keys/main/rotate', { provider: 'up', secret: 'sk-upstream-new-0002' })).status).toBe(200)
    const took = await servedByBoth(since, async (i) => (await ask(i)).status === 200 && lastUpstreamAuth() === 'Bearer sk-upstream-new-0002')
    console.log(`fleet: key rotated via instance 0's admin API; new key used by instance 0 after ${took[0]} ms, instance 1 after ${took[1]} ms`)
  })

  it('a client revoked through the CLI is refused by both', async () => {
    for (const i of [0, 1]) expect((await ask(i, victimKey)).status).toBe(200)
    const since = Date.now()
    await run(['clients', 'revoke', 'victim'])
    const took = await servedByBoth(since, async (i) => (await ask(i, victimKey)).status === 401)
    console.log(`fleet: client revoked via the CLI; refused by instance 0 after ${took[0]} ms, instance 1 after ${took[1]} ms`)
  })

  it('a route changed through the other instance’s admin API is followed by both', async () => {
    const since = Date.now()
    expect((await admin(1, '/routes', { model: MODEL, targets: ['up/gpt-4.1-mini'], replace: true })).status).toBeLessThan(300)
    const took = await servedByBoth(since, async (i) => (await ask(i)).status === 200 && lastUpstreamModel() === 'gpt-4.1-mini')
    console.log(`fleet: route changed via instance 1's admin API; followed by instance 0 after ${took[0]} ms, instance 1 after ${took[1]} ms`)
  })

  it('a circuit opened by hand is open on both, and closes on both', async () => {
    const since = Date.now()
    await run(['circuit', 'open', 'up'])
    const upstreamBefore = upstream.requests.length
    const took = await servedByBoth(since, async (i) => (await ask(i)).status >= 500)
    console.log(`fleet: circuit opened via the CLI; open on instance 0 after ${took[0]} ms, instance 1 after ${took[1]} ms`)
    // once open on both, neither calls the upstream
    const before = upstream.requests.length
    for (const i of [0, 1]) expect((await ask(i)).status).toBeGreaterThanOrEqual(500)
    expect(upstream.requests.length).toBe(before)
    expect(before).toBeGreaterThanOrEqual(upstreamBefore)
    await run(['circuit', 'reset', 'up'])
    await servedByBoth(Date.now(), async (i) => (await ask(i)).status === 200)
  })

  it('proxy usage and proxy audit ls count both instances’ traffic once', async () => {
    // every request answered above, by either instance, is one audit row; app's and victim's are usage
    const total = sent[0]! + sent[1]!
    const audit = await eventually(
      async () => JSON.parse((await run(['audit', 'ls', '--limit', '100000', '--json'])).stdout) as Array<{ client: string | null }>,
      (rows) => rows.length >= total,
      10_000,
    )
    expect(audit).toHaveLength(total)
    const { rows: usage, total: usageTotals } = JSON.parse((await run(['usage', '--by', 'client', '--json'])).stdout) as { rows: Array<{ client: string; requests: number }>; total: { requests: number } }
    const usageTotal = usage.reduce((n, u) => n + u.requests, 0)
    expect(usageTotals.requests).toBe(usageTotal)
    expect(usageTotal).toBe(audit.filter((r) => r.client === 'app' || r.client === 'victim').length)
    console.log(`fleet: ${sent[0]} requests to instance 0, ${sent[1]} to instance 1; audit ls shows ${audit.length} rows, usage ${usageTotal} requests (${usage.map((u) => `${u.client} ${u.requests}`).join(', ')})`)
  })

  it('proxy top shows which instance it watches', async () => {
    const ids = []
    for (const i of [0, 1]) {
      const port = new URL(instances[i]!.url).port
      const once = await cli(cliDir, ['top', '--once', '--url', instances[i]!.url, '--admin-key', adminKey])
      expect(once.code, once.stderr).toBe(0)
      expect(once.stdout).toMatch(new RegExp(`\\(\\S+:${port}\\)`))
      const stats = JSON.parse((await cli(cliDir, ['top', '--once', '--json', '--url', instances[i]!.url, '--admin-key', adminKey])).stdout)
      expect(stats.instance).toMatchObject({ store: { kind: 'postgres', ok: true } })
      ids.push(stats.instance.id)
    }
    expect(new Set(ids).size).toBe(2)
  })
})
