/**
 * The response cache in Redis: two in-process instances on one Redis (127.0.0.1:6379, a key prefix of this
 * test's own) share answers with a TTL; an instance whose Redis does not answer bypasses the cache and
 * still serves every request.
 */
import OpenAI from 'openai'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cliOk, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'
import { assertRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/matrix.js'

describe('the response cache in Redis', () => {
  const data = tempDataDir()
  const prefix = uniquePrefix('cache')
  let upstream: FakeUpstream
  let a: RunningProxy
  let b: RunningProxy
  let down: RunningProxy
  let key = ''
  /** an admin client key: every instance accepts it (the local admin.token is the last started instance's) */
  let adminKey = ''

  const ask = (proxy: RunningProxy, content: string) =>
    new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content }] }).withResponse()
  const chatCalls = () => upstream.requests.filter((r) => r.path.startsWith('/v1/chat/completions')).length

  beforeAll(async () => {
    await assertRedis()
    upstream = await startFakeOpenAI()
    await cliOk(data.dir, ['providers', 'add', 'oai', '--type', 'openai', '--base-url', upstream.url])
    await cliOk(data.dir, ['keys', 'add', 'oai', '--label', 'main'], 'sk-openai-main')
    await cliOk(data.dir, ['policy', 'set', 'global', '--file', '-'], JSON.stringify({ cache: { ttl: '90s' } }))
    await cliOk(data.dir, ['models', 'add', 'gpt', '--target', 'oai/gpt-upstream'])
    key = keyFrom((await cliOk(data.dir, ['clients', 'add', 'app'])).stdout)
    adminKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'ops', '--role', 'admin'])).stdout)
    const env = { PROXY_REDIS_URL: TEST_REDIS_URL, PROXY_REDIS_PREFIX: prefix }
    ;[a, b] = await Promise.all([startTestProxy(data.dir, { env }), startTestProxy(data.dir, { env })])
    // nothing listens on this port: Redis is down for this instance from its start
    down = await startTestProxy(data.dir, { env: { PROXY_REDIS_URL: 'redis://127.0.0.1:6399', PROXY_REDIS_PREFIX: prefix } })
  }, 20_000)

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), down?.close()])
    await upstream?.close()
    await deleteKeys(TEST_REDIS_URL, prefix)
    data.cleanup()
  })

  it('shares answers between instances, stored with the TTL', async () => {
    const before = chatCalls()
    const first = await ask(a, 'shared answer')
    expect(first.response.headers.get('x-proxy-cache')).toBe('miss')
    const redis = new Redis(TEST_REDIS_URL)
    try {
      // the answer is written in the background, right after it went out
      let keys: string[] = []
      for (let i = 0; i < 40 && keys.length === 0; i++) {
        keys = await redis.keys(`${prefix}c:*`)
        if (keys.length === 0) await new Promise((r) => setTimeout(r, 25))
      }
      expect(keys).toHaveLength(1)
      const ttl = await redis.pttl(keys[0]!)
      expect(ttl).toBeGreaterThan(80_000)
      expect(ttl).toBeLessThanOrEqual(90_000)
    } finally {
      redis.disconnect()
    }
    const second = await ask(b, 'shared answer')
    expect(second.response.headers.get('x-proxy-cache')).toBe('hit')
    expect(second.data).toEqual(first.data)
    expect(chatCalls()).toBe(before + 1)
  })

  it('reports and clears the shared entries from either instance', async () => {
    await ask(a, 'to be cleared')
    const stats = (await (await fetch(`${b.url}/admin/v1/cache`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { backend: string; entries: number; available: boolean }
    expect(stats).toMatchObject({ backend: 'redis', available: true })
    expect(stats.entries).toBeGreaterThanOrEqual(1)
    const cleared = (await (await fetch(`${b.url}/admin/v1/cache?model=gpt`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } })).json()) as { cleared: number }
    expect(cleared.cleared).toBeGreaterThanOrEqual(1)
    expect((await ask(a, 'to be cleared')).response.headers.get('x-proxy-cache')).toBe('miss')
  })

  it('bypasses the cache while Redis is down, and answers every request', async () => {
    const before = chatCalls()
    for (let i = 0; i < 3; i++) {
      const r = await ask(down, 'shared answer')
      expect(r.response.status).toBe(200)
      expect(r.response.headers.get('x-proxy-cache')).toBe('bypass')
    }
    expect(chatCalls()).toBe(before + 3)
  })
})
