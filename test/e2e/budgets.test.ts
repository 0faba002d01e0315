/**
 * Money budgets end to end: real servers, the official openai and @anthropic-ai/sdk clients, the CLI, and
 * both limit backends (memory, and two instances sharing the Redis at 127.0.0.1:6379 under a prefix of
 * their own). The mock provider is priced at $1 per 1M tokens in and out, so a token is a micro-dollar.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { loadSnapshot } from '../../src/store/snapshot.js'
import { apiRejection, cli, eventually, keyFrom, tempDataDir, testEnv, withTestStore } from '../helpers/proxy.js'
import { assertRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/matrix.js'

const rejection = apiRejection

const ok = async (dir: string, args: string[]) => {
  const r = await cli(dir, args)
  expect(r.code, r.stderr).toBe(0)
  return r
}

/** Spend recorded in the store for one budget, once the servers wrote it behind. */
async function spent(dir: string, level: string, name: string | null, period = 'day'): Promise<number> {
  const r = await ok(dir, ['budgets', 'ls', '--json'])
  const line = (JSON.parse(r.stdout) as Array<{ level: string; name: string | null; period: string; spentMicros: number }>).find((l) => l.level === level && l.name === name && l.period === period)
  return line?.spentMicros ?? 0
}

for (const kind of ['memory', 'redis'] as const) {
  describe(`money budgets [${kind}]`, () => {
    const data = tempDataDir()
    const prefix = uniquePrefix('budgets')
    const proxies: RunningProxy[] = []
    const keys: Record<string, string> = {}
    const sdk = (name: string, i = 0) => new OpenAI({ apiKey: keys[name], baseURL: `${proxies[i % proxies.length]!.url}/v1`, maxRetries: 0 })

    const start = () =>
      startProxy({
        dataDir: data.dir,
        port: 0,
        env: testEnv(data.dir, kind === 'redis' ? { PROXY_REDIS_URL: TEST_REDIS_URL, PROXY_REDIS_PREFIX: prefix, PROXY_REDIS_TIMEOUT_MS: '5000' } : {}),
        logger: silentLogger(),
        keychain: null,
        reloadPollMs: 50,
      })

    beforeAll(async () => {
      if (kind === 'redis') await assertRedis()
      const d = data.dir
      await ok(d, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'reply=pong', '--setting', 'latency_ms=300'])
      await ok(d, ['providers', 'add', 'spare', '--type', 'mock', '--setting', 'reply=spare'])
      // slow enough that all 50 concurrent requests are in before the first one settles
      await ok(d, ['providers', 'add', 'slow', '--type', 'mock', '--setting', 'reply=slow', '--setting', 'latency_ms=2500'])
      await ok(d, ['models', 'add', 'slow-model', '--target', 'slow/mock-small'])
      await ok(d, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])
      await ok(d, ['models', 'add', 'fast', '--target', 'spare/mock-small'])
      await ok(d, ['models', 'add', 'two-way', '--target', 'mock/mock-small', '--target', 'spare/mock-small'])
      await ok(d, ['prices', 'set', 'mock-small', '--input', '1', '--output', '1'])
      keys.crowd = keyFrom((await ok(d, ['clients', 'add', 'crowd'])).stdout)
      // room for 10 reservations of (about 10 prompt tokens + 100 output tokens) = 110 micro-dollars
      await ok(d, ['clients', 'set', 'crowd', '--daily-budget', '0.00115'])
      keys.monthly = keyFrom((await ok(d, ['clients', 'add', 'monthly', '--monthly-budget', '0.0003'])).stdout)
      keys.free = keyFrom((await ok(d, ['clients', 'add', 'free'])).stdout)
      await ok(d, ['teams', 'add', 'search', '--daily-budget', '0.00015'])
      keys.alice = keyFrom((await ok(d, ['clients', 'add', 'alice', '--team', 'search'])).stdout)
      keys.bob = keyFrom((await ok(d, ['clients', 'add', 'bob', '--team', 'search'])).stdout)
      proxies.push(await start())
      if (kind === 'redis') proxies.push(await start())
    }, 30_000)

    afterAll(async () => {
      await Promise.all(proxies.map((p) => p.close()))
      data.cleanup()
      if (kind === 'redis') await deleteKeys(TEST_REDIS_URL, prefix)
    })

    it(`admits at most 10 of 50 concurrent requests against a budget with room for 10${kind === 'redis' ? ', across two instances' : ''}`, async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          sdk('crowd', i)
            .chat.completions.create({ model: 'slow-model', max_tokens: 100, messages: [{ role: 'user', content: `hello ${i}` }] })
            .withResponse()
            .then(
              ({ response }) => ({ status: response.status, remaining: response.headers.get('x-proxy-budget-remaining'), error: null as InstanceType<typeof OpenAI.APIError> | null }),
              (e: InstanceType<typeof OpenAI.APIError>) => ({ status: e.status, remaining: null, error: e }),
            ),
        ),
      )
      const admitted = results.filter((r) => r.status === 200)
      const refused = results.filter((r) => r.status === 429)
      console.log(`[${kind}] 50 concurrent requests, budget room for 10: ${admitted.length} admitted, ${refused.length} refused`)
      expect(admitted.length).toBeGreaterThan(0)
      expect(admitted.length).toBeLessThanOrEqual(10)
      expect(admitted.length + refused.length).toBe(50)
      for (const r of admitted) expect(Number(r.remaining)).toBeGreaterThanOrEqual(0)
      const e = refused[0]!.error!
      expect(e.code).toBe('insufficient_quota')
      expect(e.message).toContain("the daily budget of client 'crowd'")
      expect(e.message).toMatch(/resets at \d{4}-\d\d-\d\dT00:00:00\.000Z/)
      expect(Number(e.headers?.get('retry-after'))).toBeGreaterThan(0)
      // what was spent, once written behind, stays within the budget
      const total = await eventually(() => spent(data.dir, 'client', 'crowd'), (n) => n > 0, 5000)
      expect(total).toBeLessThanOrEqual(1150)
    })

    it('refuses once the budget is spent, and a raised budget applies within a second, also while requests are in flight', async () => {
      const client = sdk('monthly')
      const first = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'one' }] }).withResponse()
      expect(first.response.status).toBe(200)
      // 300 - about 60 reserved: the next reservation of about 260 does not fit while it is... settled lower
      const inFlight = client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages: [{ role: 'user', content: 'two' }] })
      const refusedNow = await rejection(client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages: [{ role: 'user', content: 'three' }] }))
      expect(refusedNow.code).toBe('insufficient_quota')
      expect(refusedNow.message).toContain("the monthly budget of client 'monthly'")
      await ok(data.dir, ['clients', 'set', 'monthly', '--monthly-budget', '1'])
      await eventually(
        () => client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages: [{ role: 'user', content: 'four' }] }).then(() => true, () => false),
        (v) => v,
        3000,
      )
      expect((await inFlight).choices[0]!.message.content).toBe('pong')
      await ok(data.dir, ['clients', 'set', 'monthly', '--monthly-budget', 'off'])
    })

    it('counts a stream, and a stream the client cut, against the budget', async () => {
      const before = await spent(data.dir, 'client', 'free')
      await ok(data.dir, ['clients', 'set', 'free', '--daily-budget', '1'])
      await eventually(() => proxies.every((p) => p.config.current().clientsByHash.size > 0 && [...p.config.current().clientsByHash.values()].some((c) => c.name === 'free' && c.budgets)), (v) => v, 3000)
      const stream = await sdk('free').chat.completions.create({ model: 'fast', max_tokens: 20, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream please' }] })
      let usage: OpenAI.CompletionUsage | undefined
      for await (const chunk of stream) if (chunk.usage) usage = chunk.usage
      expect(usage).toBeDefined()
      const afterStream = await eventually(() => spent(data.dir, 'client', 'free'), (n) => n >= before + usage!.total_tokens, 5000)
      expect(afterStream - before).toBe(usage!.total_tokens)
      // cut: read one chunk of a slow stream, then leave
      const cut = await sdk('free').chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 20, stream: true, messages: [{ role: 'user', content: 'cut me' }] })
      for await (const _ of cut) {
        cut.controller.abort()
        break
      }
      const afterCut = await eventually(() => spent(data.dir, 'client', 'free'), (n) => n > afterStream, 5000)
      // the prompt estimate, at least: charged for what was sent (the upstream reported nothing)
      expect(afterCut - afterStream).toBeGreaterThan(0)
      expect(afterCut - afterStream).toBeLessThan(100)
    })

    it('counts embeddings, /v1/responses and /v1/messages against the budget too', async () => {
      let last = await spent(data.dir, 'client', 'free')
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['embeddings', () => sdk('free').embeddings.create({ model: 'fast', input: 'count me' })],
        ['responses', () => sdk('free').responses.create({ model: 'fast', input: 'count me', max_output_tokens: 20 })],
        ['messages', () => new Anthropic({ apiKey: keys.free, baseURL: proxies[0]!.url, maxRetries: 0 }).messages.create({ model: 'fast', max_tokens: 20, messages: [{ role: 'user', content: 'count me' }] })],
      ]
      for (const [what, call] of calls) {
        await call()
        const now = await eventually(() => spent(data.dir, 'client', 'free'), (n) => n > last, 5000).catch(() => last)
        expect(now, what).toBeGreaterThan(last)
        last = now
      }
    })

    it('a team budget is shared by its clients', async () => {
      const a = sdk('alice')
      const b = sdk('bob', 1)
      let admitted = 0
      let refusal: InstanceType<typeof OpenAI.APIError> | null = null
      for (let i = 0; i < 12 && !refusal; i++) {
        const client = i % 2 === 0 ? a : b
        await client.chat.completions.create({ model: 'fast', max_tokens: 100, messages: [{ role: 'user', content: `team ${i}` }] }).then(
          () => admitted++,
          (e: InstanceType<typeof OpenAI.APIError>) => (refusal = e),
        )
      }
      expect(refusal).not.toBeNull()
      expect(refusal!.message).toContain("the daily budget of team 'search'")
      // each request reserves about 110 micro-dollars and settles near 15, of a 150 budget: both clients drew on it
      expect(admitted).toBeGreaterThanOrEqual(2)
      const ls = JSON.parse((await ok(data.dir, ['clients', 'ls', '--json'])).stdout) as Array<{ name: string; team: string | null }>
      expect(ls.find((c) => c.name === 'alice')!.team).toBe('search')
      // usage per team: both clients' requests under the team
      const byTeam = await eventually(
        async () => (JSON.parse((await ok(data.dir, ['usage', '--by', 'team', '--json'])).stdout) as { rows: Array<{ team: string; requests: number }> }).rows,
        (rows) => (rows.find((r) => r.team === 'search')?.requests ?? 0) >= admitted + 1,
        5000,
      )
      expect(byTeam.find((r) => r.team === 'search')!.requests).toBe(admitted + 1)
    })

    it('a provider budget skips that provider and falls back to the next target; with none left, 429', async () => {
      await ok(data.dir, ['budgets', 'set', '--level', 'provider', '--name', 'mock', '--daily-budget', '0.00005'])
      await eventually(() => proxies.every((p) => !!p.config.current().providers.get('mock')?.budgets), (v) => v, 3000)
      const { data: answer, response } = await sdk('free').chat.completions.create({ model: 'two-way', max_tokens: 100, messages: [{ role: 'user', content: 'who serves?' }] }).withResponse()
      expect(answer.choices[0]!.message.content).toBe('spare')
      expect(response.headers.get('x-proxy-provider')).toBe('spare')
      const e = await rejection(sdk('free').chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'only mock' }] }))
      expect(e.status).toBe(429)
      expect(e.code).toBe('insufficient_quota')
      expect(e.message).toContain("the daily budget of provider 'mock'")
      await ok(data.dir, ['budgets', 'set', '--level', 'provider', '--name', 'mock', '--daily-budget', 'off'])
    })

    it("answers Anthropic's error shape on /v1/messages", async () => {
      await ok(data.dir, ['clients', 'set', 'free', '--daily-budget', '0.000001'])
      await eventually(() => proxies.every((p) => [...p.config.current().clientsByHash.values()].some((c) => c.name === 'free' && c.budgets?.daily === 1)), (v) => v, 3000)
      const anthropic = new Anthropic({ apiKey: keys.free, baseURL: proxies[0]!.url, maxRetries: 0 })
      const e = await anthropic.messages.create({ model: 'fast', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).then(
        () => null,
        (err: unknown) => err,
      )
      expect(e).toBeInstanceOf(Anthropic.APIError)
      const apiError = e as InstanceType<typeof Anthropic.APIError>
      expect(apiError.status).toBe(429)
      expect((apiError.error as { type: string; error: { type: string; message: string } }).type).toBe('error')
      expect((apiError.error as { error: { message: string } }).error.message).toContain("the daily budget of client 'free'")
    })

    it('a global budget holds every client to the total', async () => {
      await ok(data.dir, ['budgets', 'set', '--daily-budget', '0.000001'])
      await eventually(() => proxies.every((p) => p.config.current().globalBudgets?.daily === 1), (v) => v, 3000)
      const e = await rejection(sdk('alice').chat.completions.create({ model: 'fast', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }))
      expect(e.code).toBe('insufficient_quota')
      expect(e.message).toContain("the proxy's daily budget (all clients together)")
      await ok(data.dir, ['budgets', 'set', '--daily-budget', 'off'])
    })
  })
}

describe('setting budgets', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  it('refuses a budget over a model without a price, naming it and how to set one', async () => {
    await ok(data.dir, ['providers', 'add', 'local', '--type', 'mock'])
    await ok(data.dir, ['models', 'add', 'llama', '--target', 'local/llama-3-local'])
    const r = await cli(data.dir, ['budgets', 'set', '--monthly-budget', '100'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('no price is known for local/llama-3-local')
    expect(r.stderr).toContain("proxy prices set llama-3-local --provider local")
    await ok(data.dir, ['prices', 'set', 'llama-3-local', '--provider', 'local', '--input', '0', '--output', '0.1'])
    await ok(data.dir, ['budgets', 'set', '--monthly-budget', '100'])
    const ls = JSON.parse((await ok(data.dir, ['budgets', 'ls', '--json'])).stdout) as Array<{ level: string; limitMicros: number }>
    expect(ls).toEqual([expect.objectContaining({ level: 'global', limitMicros: 100_000_000 })])
    expect((await ok(data.dir, ['budgets', 'set', '--output-cap', '16k'])).stdout).toContain('reserved for 16000 output tokens')
    expect(await withTestStore(data.dir, async (store) => (await loadSnapshot(store)).budgetOutputCap)).toBe(16_000)
    expect((await cli(data.dir, ['budgets', 'set', '--output-cap', 'lots'])).stderr).toContain('--output-cap takes a number of tokens')
  })
})
