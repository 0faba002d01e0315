/**
 * Two real `proxy serve` processes sharing one Redis and one data directory: a client limit of L requests
 * per window holds across both, exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, keyFrom, tempDataDir } from '../helpers/proxy.js'
import { assertRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/matrix.js'
import { assertBuilt, spawnServe, type ServeProcess } from '../limits/serve-process.js'

const L = 10

describe('two proxy serve processes sharing Redis', () => {
  const data = tempDataDir()
  const prefix = uniquePrefix('cluster')
  const instances: ServeProcess[] = []
  let key = ''

  beforeAll(async () => {
    assertBuilt()
    await assertRedis()
    for (const args of [
      ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'latency_ms=5'],
      ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'],
    ]) expect((await cli(data.dir, args)).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'shared', '--limit', `requests=${L}/1m`, '--daily-tokens', '1M'])).stdout)
    // A generous deadline: on a loaded test machine a check may really take longer than the default
    // 500 ms, and failing open would then (correctly, by design) admit on local limits.
    const env = { PROXY_REDIS_URL: TEST_REDIS_URL, PROXY_REDIS_PREFIX: prefix, PROXY_REDIS_TIMEOUT_MS: '5000' }
    instances.push(...(await Promise.all([spawnServe(data.dir, env), spawnServe(data.dir, env)])))
  }, 40_000)

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()))
    data.cleanup()
    await deleteKeys(TEST_REDIS_URL, prefix)
  })

  it(`admits exactly ${L} of ${3 * L} requests spread over both instances`, async () => {
    const send = (i: number) =>
      fetch(`${instances[i % 2]!.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `request ${i}` }] }),
      }).then(async (r) => ({ status: r.status, instance: i % 2, body: (await r.json()) as { error?: { code: string } } }))
    const results = await Promise.all(Array.from({ length: 3 * L }, (_, i) => send(i)))
    const accepted = results.filter((r) => r.status === 200)
    const refused = results.filter((r) => r.status === 429)
    console.log(`two instances, limit ${L}/1m: ${accepted.length} accepted (instance 0: ${accepted.filter((r) => r.instance === 0).length}, instance 1: ${accepted.filter((r) => r.instance === 1).length}), ${refused.length} refused with 429`)
    if (accepted.length !== L) console.log(instances.map((i) => i.output()).join('\n----\n'))
    expect(accepted).toHaveLength(L)
    expect(refused).toHaveLength(2 * L)
    expect(refused.every((r) => r.body.error?.code === 'rate_limit_exceeded')).toBe(true)
    // each instance got 15 requests and refused some: one window for both, not one per instance
    expect(new Set(refused.map((r) => r.instance)).size).toBe(2)
  })

  it('both instances write quota usage to the shared store, batched', async () => {
    await Promise.all(instances.map((i) => i.stop()))
    const ls = await cli(data.dir, ['clients', 'ls', '--json'])
    const shared = (JSON.parse(ls.stdout) as Array<{ name: string; usage: { today: number } }>).find((c) => c.name === 'shared')!
    expect(shared.usage.today).toBeGreaterThan(0)
  })
})
