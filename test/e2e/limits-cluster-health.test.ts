/**
 * Two real `proxy serve` processes sharing one Redis and one data directory: a circuit opened by one
 * instance is honoured by the other (it never calls that provider), and a 429 with Retry-After seen by
 * one cools the key down on the other, within the shared-health poll (250 ms) and well within 1 s.
 * Both instances log what they adopt ("opened by another instance", "seen by another instance"); the
 * timings below come from those log lines.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { addClient, addProvider, addRoute, chat, secret, setPolicy } from '../gateway/harness.js'
import { tempDataDir } from '../helpers/proxy.js'
import { assertRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/matrix.js'
import { assertBuilt, spawnServe, type ServeProcess } from '../limits/serve-process.js'

type LogLine = Record<string, any> & { time: string }

/** The JSON log lines a process wrote so far that match. */
function logLines(p: ServeProcess, match: (l: LogLine) => boolean): LogLine[] {
  const out: LogLine[] = []
  for (const text of p.output().split('\n')) {
    if (!text.startsWith('{')) continue
    try {
      const line = JSON.parse(text) as LogLine
      if (match(line)) out.push(line)
    } catch {
      // not a log line
    }
  }
  return out
}

/** Waits for the first matching log line; null when none came within `ms`. */
async function waitForLine(p: ServeProcess, match: (l: LogLine) => boolean, ms: number): Promise<LogLine | null> {
  const until = Date.now() + ms
  for (;;) {
    const line = logLines(p, match)[0]
    if (line) return line
    if (Date.now() > until) return null
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('two proxy serve processes sharing upstream health through Redis', () => {
  const data = tempDataDir()
  const prefix = uniquePrefix('cluster-health')
  const instances: ServeProcess[] = []
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let gamma: FaultUpstream
  let key = ''

  beforeAll(async () => {
    assertBuilt()
    await assertRedis()
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    gamma = await startFaultUpstream('gamma')
    await addProvider(data.dir, 'alpha', alpha, ['a1'])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addProvider(data.dir, 'gamma', gamma, [{ label: 'g1', priority: 0 }, { label: 'g2', priority: 1 }])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await addRoute(data.dir, 'k', ['gamma/up-g'])
    await setPolicy(data.dir, 'global', {
      keys: { strategy: 'priority' },
      retry: { max_attempts: 2, backoff_ms: { base: 5, max: 5 } },
      circuit: { consecutive_failures: 2, open_s: 30, min_requests: 1000 },
    })
    key = await addClient(data.dir, 'app')
    const env = { PROXY_REDIS_URL: TEST_REDIS_URL, PROXY_REDIS_PREFIX: prefix, PROXY_REDIS_TIMEOUT_MS: '5000' }
    instances.push(...(await Promise.all([spawnServe(data.dir, env), spawnServe(data.dir, env)])))
  }, 40_000)

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()))
    await Promise.all([alpha, beta, gamma].map((u) => u?.close()))
    data.cleanup()
    await deleteKeys(TEST_REDIS_URL, prefix)
  })

  it('a provider circuit opened by instance A is honoured by instance B within 1 s: B never calls it', async () => {
    const [a, b] = instances as [ServeProcess, ServeProcess]
    alpha.fail({ status: 500 })
    const isOpen = (l: LogLine) => l.event === 'circuit' && l.scope === 'provider' && l.provider === 'alpha' && l.to === 'open'
    // drive A until its circuit for alpha opens (2 consecutive failures); beta serves meanwhile
    for (let i = 0; i < 2; i++) {
      const r = await chat(a.url, key, 'm')
      expect(r.status).toBe(200)
      expect(r.headers.get('x-proxy-provider')).toBe('beta')
    }
    const aOpened = await waitForLine(a, isOpen, 1000)
    expect(aOpened, a.output()).not.toBeNull()
    const triedByA = alpha.count()
    expect(triedByA).toBe(2)

    // B has never called alpha; it learns of the open circuit from Redis, not from its own failures
    const bOpened = await waitForLine(b, isOpen, 1000)
    expect(bOpened, b.output()).not.toBeNull()
    const honouredMs = Date.parse(bOpened!.time) - Date.parse(aOpened!.time)
    console.log(`circuit: A opened alpha at ${aOpened!.time}, B honoured it at ${bOpened!.time} (${honouredMs} ms later; reason '${bOpened!.reason}', open until ${bOpened!.open_until})`)
    expect(bOpened!.reason).toBe('opened by another instance')
    expect(bOpened!.open_until).toBe(aOpened!.open_until)
    expect(honouredMs).toBeLessThan(1000)

    for (let i = 0; i < 5; i++) {
      const r = await chat(b.url, key, 'm')
      expect(r.status).toBe(200)
      expect(r.headers.get('x-proxy-provider')).toBe('beta')
      expect(r.headers.get('x-proxy-attempts')).toBe('1')
      expect(r.headers.get('x-proxy-fallback')).toBe('provider')
    }
    expect(alpha.count()).toBe(triedByA)

    // the shared key lives exactly as long as the open period
    const redis = new Redis(TEST_REDIS_URL)
    try {
      const keys = await redis.keys(`${prefix}s:circuit:p:*`)
      expect(keys).toHaveLength(1)
      const ttl = await redis.pttl(keys[0]!)
      expect(ttl).toBeGreaterThan(25_000)
      expect(ttl).toBeLessThanOrEqual(30_000)
      expect(Number(await redis.get(keys[0]!))).toBe(Date.parse(aOpened!.open_until))
    } finally {
      redis.disconnect()
    }
  })

  it("a 429 with Retry-After seen by instance A cools the key down on instance B too", async () => {
    const [a, b] = instances as [ServeProcess, ServeProcess]
    const g1 = secret('gamma', 'g1')
    const g2 = secret('gamma', 'g2')
    gamma.fail({ key: g1, status: 429, retryAfter: '30' })
    const cooling = (l: LogLine) => l.event === 'key_health' && l.provider === 'gamma' && l.key === 'g1' && l.to === 'cooling'

    const first = await chat(a.url, key, 'k')
    expect(first.status).toBe(200)
    expect(first.content).toBe(`served by gamma with ${g2}`)
    expect(first.headers.get('x-proxy-fallback')).toBe('key')
    const aCooling = await waitForLine(a, cooling, 1000)
    expect(aCooling, a.output()).not.toBeNull()
    expect(gamma.count(g1)).toBe(1)

    const bCooling = await waitForLine(b, cooling, 1000)
    expect(bCooling, b.output()).not.toBeNull()
    const honouredMs = Date.parse(bCooling!.time) - Date.parse(aCooling!.time)
    console.log(`cooldown: A cooled g1 at ${aCooling!.time}, B at ${bCooling!.time} (${honouredMs} ms later; '${bCooling!.reason}', until ${bCooling!.cooldown_until})`)
    expect(bCooling!.reason).toBe('upstream 429, Retry-After 30 s (seen by another instance)')
    expect(bCooling!.cooldown_until).toBe(aCooling!.cooldown_until)
    expect(honouredMs).toBeLessThan(1000)

    // B goes straight to g2: the cooling key is not even tried
    for (let i = 0; i < 3; i++) {
      const r = await chat(b.url, key, 'k')
      expect(r.status).toBe(200)
      expect(r.content).toBe(`served by gamma with ${g2}`)
      expect(r.headers.get('x-proxy-attempts')).toBe('1')
    }
    expect(gamma.count(g1)).toBe(1)
  })
})
