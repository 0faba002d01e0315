/**
 * Limits and quotas end to end: a real server, the official openai SDK, and the CLI, against both
 * backends (memory, and the Redis at 127.0.0.1:6379 under a prefix of its own).
 */
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { estimateChatTokens, Tokenizer } from '../../src/limits/estimate.js'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { apiRejection, cli, eventually, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'
import { assertRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/matrix.js'

const tokenizer = new Tokenizer()

const rejection = apiRejection

for (const kind of ['memory', 'redis'] as const) {
  describe(`limits through the openai SDK [${kind}]`, () => {
    const data = tempDataDir()
    const prefix = uniquePrefix('e2e')
    let proxy: RunningProxy
    const keys: Record<string, string> = {}
    const sdk = (name: string) => new OpenAI({ apiKey: keys[name], baseURL: `${proxy.url}/v1`, maxRetries: 0 })

    const start = () =>
      startProxy({
        dataDir: data.dir,
        port: 0,
        env: testEnv(data.dir, kind === 'redis' ? { PROXY_REDIS_URL: TEST_REDIS_URL, PROXY_REDIS_PREFIX: prefix } : {}),
        logger: silentLogger(),
        keychain: null,
        reloadPollMs: 50,
      })

    beforeAll(async () => {
      if (kind === 'redis') await assertRedis()
      await tokenizer.load()
      const ok = async (args: string[], stdin?: string) => {
        const r = await cli(data.dir, args, stdin === undefined ? {} : { stdin })
        expect(r.code, r.stderr).toBe(0)
        return r
      }
      await ok(['providers', 'add', 'mock', '--type', 'mock', '--setting', 'reply=pong', '--setting', 'chunks=3'])
      await ok(['providers', 'add', 'broken', '--type', 'mock', '--setting', 'error_rate=1', '--setting', 'error_status=500'])
      await ok(['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])
      await ok(['models', 'add', 'limited-model', '--target', 'mock/mock-small'])
      await ok(['models', 'add', 'broken-model', '--target', 'broken/x'])
      keys.free = keyFrom((await ok(['clients', 'add', 'free'])).stdout)
      keys.rpm = keyFrom((await ok(['clients', 'add', 'rpm', '--limit', 'requests=2/10s'])).stdout)
      keys.tpm = keyFrom((await ok(['clients', 'add', 'tpm', '--tpm', '2000'])).stdout)
      keys.quota = keyFrom((await ok(['clients', 'add', 'quota', '--daily-tokens', '100', '--monthly-tokens', '10k'])).stdout)
      await ok(['policy', 'set', 'global', '--file', '-'], JSON.stringify({ limits: { model: { 'limited-model': { requests: '1/1m' } } } }))
      proxy = await start()
    })
    afterAll(async () => {
      await proxy?.close()
      data.cleanup()
      if (kind === 'redis') await deleteKeys(TEST_REDIS_URL, prefix)
    })

    it('sends no x-ratelimit headers when no limit applies', async () => {
      const { response } = await sdk('free').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
      expect(response.status).toBe(200)
      expect([...response.headers.keys()].filter((h) => h.startsWith('x-ratelimit'))).toEqual([])
    })

    it('answers 429 rate_limit_exceeded with Retry-After and OpenAI headers once the client limit is reached', async () => {
      const client = sdk('rpm')
      const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one' }] }).withResponse()
      expect(first.response.headers.get('x-ratelimit-limit-requests')).toBe('2')
      expect(first.response.headers.get('x-ratelimit-remaining-requests')).toBe('1')
      expect(first.response.headers.get('x-ratelimit-reset-requests')).toMatch(/^(9\.\d+|10(\.\d+)?)s$/) // up to one slot (1% of the window) past it
      // models listings count as requests too
      const models = await client.models.list().withResponse()
      expect(models.response.headers.get('x-ratelimit-remaining-requests')).toBe('0')
      const refused = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'three' }] })
      await expect(refused).rejects.toBeInstanceOf(OpenAI.RateLimitError)
      const err = (await refused.catch((e: unknown) => e)) as InstanceType<typeof OpenAI.RateLimitError>
      expect(err.status).toBe(429)
      expect(err.code).toBe('rate_limit_exceeded')
      expect(err.type).toBe('rate_limit_error')
      expect(err.message).toMatch(/client 'rpm' on requests per 10s: limit 2/)
      expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(9)
      expect(Number(err.headers.get('retry-after'))).toBeLessThanOrEqual(11)
      expect(err.headers.get('x-ratelimit-remaining-requests')).toBe('0')
      expect(err.headers.get('x-request-id')).toBeTruthy()
    })

    it('charges the token estimate before the call and settles with the reported usage', async () => {
      const client = sdk('tpm')
      const req = { model: 'gpt-4o-mini', max_tokens: 300, messages: [{ role: 'user' as const, content: 'How many tokens is this?' }] }
      const estimate = estimateChatTokens(req, tokenizer.counter())
      const first = await client.chat.completions.create(req).withResponse()
      expect(first.response.headers.get('x-ratelimit-limit-tokens')).toBe('2000')
      expect(first.response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(2000 - estimate))
      const actual1 = first.data.usage!.total_tokens
      expect(actual1).toBeLessThan(estimate)
      // streamed: settled with the usage the stream reported, although the client did not ask for it
      const stream = await client.chat.completions.create({ ...req, stream: true }).withResponse()
      expect(stream.response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(2000 - actual1 - estimate))
      let text = ''
      for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? ''
      expect(text).toBe('pong')
      const actual2 = actual1 // same prompt, same reply
      await eventually(
        async () => (await client.chat.completions.create(req).withResponse()).response.headers.get('x-ratelimit-remaining-tokens'),
        (v) => v !== null,
      )
      const next = await client.chat.completions.create(req).withResponse()
      // three settled requests and this one's estimate
      expect(next.response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(2000 - 3 * actual2 - estimate))
    })

    it('refunds the estimate of a failed request, and reports limits on the error too', async () => {
      const client = sdk('tpm')
      const req = { model: 'broken-model', max_tokens: 1000, messages: [{ role: 'user' as const, content: 'fail' }] }
      const before = (await client.models.list().withResponse()).response
      expect(before.headers.get('x-ratelimit-limit-tokens')).toBeNull() // listings use no tokens
      const failed = await rejection(client.chat.completions.create(req))
      expect(failed.status).toBeGreaterThanOrEqual(500)
      const remainingOnError = Number(failed.headers!.get('x-ratelimit-remaining-tokens'))
      const again = await rejection(client.chat.completions.create(req))
      // the first failure's 1000+ token estimate came back before the second was charged
      expect(Number(again.headers!.get('x-ratelimit-remaining-tokens'))).toBe(remainingOnError)
    })

    it('applies the policy limits per model', async () => {
      const client = sdk('free')
      const ok = await client.chat.completions.create({ model: 'limited-model', messages: [{ role: 'user', content: 'x' }] }).withResponse()
      expect(ok.response.headers.get('x-ratelimit-limit-requests')).toBe('1')
      const refused = await rejection(client.chat.completions.create({ model: 'limited-model', messages: [{ role: 'user', content: 'x' }] }))
      expect(refused).toBeInstanceOf(OpenAI.RateLimitError)
      expect(refused.message).toMatch(/model 'limited-model'/)
    })

    it('answers insufficient_quota when the daily quota is used up, and the quota survives a restart', async () => {
      const client = sdk('quota')
      const req = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'spend' }] }
      let used = 0
      let refused: InstanceType<typeof OpenAI.RateLimitError> | null = null
      for (let i = 0; i < 20 && !refused; i++) {
        const r = await client.chat.completions.create(req).catch((e: unknown) => e as InstanceType<typeof OpenAI.RateLimitError>)
        if (r instanceof OpenAI.RateLimitError) refused = r
        else used += (r as OpenAI.ChatCompletion).usage!.total_tokens
      }
      expect(refused).not.toBeNull()
      expect(refused!.code).toBe('insufficient_quota')
      expect(refused!.type).toBe('insufficient_quota')
      expect(refused!.headers.get('x-should-retry')).toBe('false')
      expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(used).toBeGreaterThan(70)
      expect(used).toBeLessThanOrEqual(100)

      await proxy.close() // flushes the usage
      if (kind === 'redis') expect(await deleteKeys(TEST_REDIS_URL, prefix)).toBeGreaterThan(0) // Redis forgets: the store must remember
      const listed = await cli(data.dir, ['clients', 'ls'])
      expect(listed.stdout).toMatch(new RegExp(`quota .*100 tok/day, 10k tok/month\\s+${used}/100\\s+${used}/10k`))
      proxy = await start()
      const after = await sdk('quota').chat.completions.create(req).catch((e: unknown) => e)
      expect(after).toBeInstanceOf(OpenAI.RateLimitError)
      expect((after as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota')
    })

    it('applies `proxy clients set` on the running server within about a second', async () => {
      const set = await cli(data.dir, ['clients', 'set', 'quota', '--daily-tokens', '1M', '--rpm', '50', '--limit', 'requests=1/1s'])
      expect(set.code, set.stderr).toBe(0)
      expect(set.stdout).toMatch(/50 rpm, 1\/1s req, 1M tok\/day, 10k tok\/month/)
      const client = sdk('quota')
      const res = await eventually(
        () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).withResponse().catch((e: unknown) => e),
        (r) => !(r instanceof OpenAI.APIError),
        3000,
      )
      const headers = (res as { response: Response }).response.headers
      expect(headers.get('x-ratelimit-limit-requests')).toBe('1')
      expect(headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|1(\.\d+)?s)$/)
    })
  })
}

describe('proxy clients add / set / ls (limits)', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  it('stores limits next to rpm/tpm, replaces a window of the same length, and clears them', async () => {
    const add = await cli(data.dir, ['clients', 'add', 'app', '--rpm', '600', '--tpm', '100k', '--daily-tokens', '1M', '--monthly-tokens', '20M', '--limit', 'requests=10/1s', '--limit', 'tokens=2M/1h', '--json'])
    expect(add.code, add.stderr).toBe(0)
    expect(JSON.parse(add.stdout)).toMatchObject({ rpm: 600, tpm: 100_000, dailyTokens: 1_000_000, monthlyTokens: 20_000_000, limits: ['requests=10/1s', 'tokens=2000000/1h'] })
    const set = await cli(data.dir, ['clients', 'set', 'app', '--limit', 'requests=20/1s', '--tpm', 'off', '--json'])
    expect(JSON.parse(set.stdout)).toMatchObject({ rpm: 600, tpm: null, limits: ['tokens=2000000/1h', 'requests=20/1s'] })
    const cleared = await cli(data.dir, ['clients', 'set', 'app', '--clear-limits', '--json'])
    expect(JSON.parse(cleared.stdout).limits).toEqual([])
    const ls = await cli(data.dir, ['clients', 'ls'])
    expect(ls.stdout).toMatch(/LIMITS\s+TODAY\s+MONTH/)
    expect(ls.stdout).toMatch(/600 rpm, 1M tok\/day, 20M tok\/month\s+0\/1M\s+0\/20M/)
  })

  it('refuses malformed limits with a clear message', async () => {
    for (const args of [['--limit', 'requests=10/2d'], ['--limit', 'bytes=1/1s'], ['--rpm', 'lots'], ['--daily-tokens', '0']]) {
      const r = await cli(data.dir, ['clients', 'add', `bad-${args.join('')}`.replace(/\W/g, ''), ...args])
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/--limit takes|--rpm takes|--daily-tokens takes/)
    }
    const nothing = await cli(data.dir, ['clients', 'set', 'app'])
    expect(nothing.code).not.toBe(0)
    expect(nothing.stderr).toMatch(/Nothing to change/)
  })

  it('validates limits in a policy document', async () => {
    const bad = await cli(data.dir, ['policy', 'set', 'global', '--file', '-'], { stdin: JSON.stringify({ limits: { ip: { requests: '10 per second' } } }) })
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/limits\.ip\.requests/)
    const good = await cli(data.dir, ['policy', 'set', 'global', '--file', '-'], { stdin: JSON.stringify({ limits: { global: { rpm: 1000, tokens: ['1M/1m', '50M/1d'] }, ip: { requests: '10/1s' } }, redis: { on_failure: 'closed' } }) })
    expect(good.code, good.stderr).toBe(0)
  })
})
