import { Redis } from 'ioredis'
import { expect, it } from 'vitest'
import { RedisBackend } from '../../src/limits/redis.js'
import type { ConsumeRequest, LimitBackend } from '../../src/limits/types.js'
import { describeMatrix, TEST_REDIS_URL } from './matrix.js'

const req = (rates: Array<[key: string, limit: number, windowMs: number, cost?: number]>, quotas: ConsumeRequest['quotas'] = []): ConsumeRequest => ({
  rates: rates.map(([key, limit, windowMs, cost]) => ({ key, limit, windowMs, cost: cost ?? 1 })),
  quotas,
})

/** Sleeps until the wall clock is `at` ms into a second (redis suites align bursts with second boundaries). */
async function untilMsIntoSecond(at: number): Promise<void> {
  const wait = (at - (Date.now() % 1000) + 1000) % 1000
  await new Promise((r) => setTimeout(r, wait))
}

describeMatrix('limits backend', (ctx) => {
  let n = 0
  const key = (label: string) => `${label}-${++n}`

  it('admits up to the limit, then refuses with the time until a slot frees', async () => {
    const b = await ctx.backend()
    const k = key('r')
    const remaining: number[] = []
    for (let i = 0; i < 3; i++) {
      const out = await b.consume(req([[k, 3, 1000]]))
      expect(out.blocked).toBeNull()
      remaining.push(out.rates[0]!.remaining)
      expect(out.rates[0]!.resetMs).toBeGreaterThan(0)
      expect(out.rates[0]!.resetMs).toBeLessThanOrEqual(1010)
    }
    expect(remaining).toEqual([2, 1, 0])
    const refused = await b.consume(req([[k, 3, 1000]]))
    expect(refused.blocked).toMatchObject({ type: 'rate', index: 0, never: false })
    expect(refused.blocked!.retryAfterMs).toBeGreaterThan(0)
    expect(refused.blocked!.retryAfterMs).toBeLessThanOrEqual(1010)
    expect(refused.rates[0]!.remaining).toBe(0)
  })

  it('slides: capacity comes back one window after each admission, not at a fixed boundary', async () => {
    const b = await ctx.backend()
    const k = key('slide')
    const W = 2000
    expect((await b.consume(req([[k, 2, W]]))).blocked).toBeNull()
    await ctx.advance(1000)
    expect((await b.consume(req([[k, 2, W]]))).blocked).toBeNull()
    await ctx.advance(600) // 1.6 s: both still inside the window
    expect((await b.consume(req([[k, 2, W]]))).blocked).not.toBeNull()
    await ctx.advance(500) // 2.1 s: the first left, the second (1.0 s) has not
    expect((await b.consume(req([[k, 2, W]]))).blocked).toBeNull()
    expect((await b.consume(req([[k, 2, W]]))).blocked).not.toBeNull()
    await ctx.advance(1000) // 3.1 s: the second left
    expect((await b.consume(req([[k, 2, W]]))).blocked).toBeNull()
  })

  it('does not let a second burst through right after a window boundary (no 2x)', async () => {
    const b = await ctx.backend()
    const k = key('burst')
    const L = 5
    if (ctx.kind === 'redis') await untilMsIntoSecond(850)
    else await ctx.advance(850)
    for (let i = 0; i < L; i++) expect((await b.consume(req([[k, L, 1000]]))).blocked).toBeNull()
    await ctx.advance(250) // a fixed 1 s window would have reset by now
    let admitted = 0
    for (let i = 0; i < L; i++) if ((await b.consume(req([[k, L, 1000]]))).blocked === null) admitted++
    expect(admitted).toBe(0)
  })

  it('never admits more than the limit in any span of one window (random traffic)', async () => {
    const b = await ctx.backend()
    const k = key('random')
    const L = 4
    const W = 1000
    const times: number[] = []
    let seed = 7
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const until = ctx.now() + 3000
    while (ctx.now() < until) {
      const out = await b.consume(req([[k, L, W]]))
      if (out.blocked === null) times.push(out.now)
      await ctx.advance(Math.floor(rand() * 120))
    }
    expect(times.length).toBeGreaterThanOrEqual(2 * L)
    for (let i = 0; i < times.length; i++) {
      const inWindow = times.filter((t) => t >= times[i]! && t < times[i]! + W).length
      expect(inWindow).toBeLessThanOrEqual(L)
    }
  })

  it('admits a request by every limit or by none', async () => {
    const b = await ctx.backend()
    const tight = key('tight')
    const loose = key('loose')
    expect((await b.consume(req([[loose, 5, 10_000], [tight, 1, 10_000]]))).blocked).toBeNull()
    const refused = await b.consume(req([[loose, 5, 10_000], [tight, 1, 10_000]]))
    expect(refused.blocked).toMatchObject({ type: 'rate', index: 1 })
    // the refused request took nothing from the limit that would have admitted it
    const alone = await b.consume(req([[loose, 5, 10_000]]))
    expect(alone.rates[0]!.remaining).toBe(3)
  })

  it('charges token estimates, refuses what does not fit, and settles to the actual usage', async () => {
    const b = await ctx.backend()
    const k = key('tok')
    const first = await b.consume(req([[k, 100, 10_000, 60]]))
    expect(first.blocked).toBeNull()
    expect(first.rates[0]!.remaining).toBe(40)
    const tooMuch = await b.consume(req([[k, 100, 10_000, 50]]))
    expect(tooMuch.blocked).toMatchObject({ type: 'rate', never: false })
    // the upstream reported 10 tokens: 50 come back
    b.settle({ at: first.now, rates: [{ key: k, windowMs: 10_000, delta: -50 }], quotas: [] })
    await ctx.settled(b)
    const fits = await b.consume(req([[k, 100, 10_000, 50]]))
    expect(fits.blocked).toBeNull()
    expect(fits.rates[0]!.remaining).toBe(40)
    const huge = await b.consume(req([[k, 100, 10_000, 101]]))
    expect(huge.blocked).toMatchObject({ type: 'rate', never: true })
  })

  it('counts quotas from their seed and refuses past the quota until the period ends', async () => {
    const b = await ctx.backend()
    const k = key('quota')
    const endsAt = ctx.now() + 3_600_000
    const quota = (cost: number, seed = 900) => [{ key: k, limit: 1000, cost, seed, endsAt }]
    const first = await b.consume(req([], quota(50)))
    expect(first.blocked).toBeNull()
    expect(first.quotas).toEqual([950])
    // the seed only matters when the backend has no counter
    const second = await b.consume(req([], quota(40, 0)))
    expect(second.quotas).toEqual([990])
    const refused = await b.consume(req([], quota(20)))
    expect(refused.blocked).toMatchObject({ type: 'quota', index: 0, never: false })
    expect(refused.blocked!.retryAfterMs).toBeGreaterThan(3_500_000)
    b.settle({ at: second.now, rates: [], quotas: [{ key: k, delta: -30 }] })
    await ctx.settled(b)
    expect((await b.consume(req([], quota(20)))).quotas).toEqual([980])
  })

  it('reports an exhausted quota over a rate limit that also refuses', async () => {
    const b = await ctx.backend()
    const r = key('both-r')
    const q = key('both-q')
    await b.consume(req([[r, 1, 10_000]]))
    const out = await b.consume(req([[r, 1, 10_000]], [{ key: q, limit: 10, cost: 5, seed: 10, endsAt: ctx.now() + 60_000 }]))
    expect(out.blocked).toMatchObject({ type: 'quota', index: 0 })
  })

  it('keeps small shared state with expiry (for circuit breakers and key cooldowns)', async () => {
    const b = await ctx.backend()
    const k = key('state')
    expect(await b.get(k)).toBeNull()
    await b.set(k, 'open', 1000)
    expect(await b.get(k)).toBe('open')
    expect(await b.incr(`${k}:n`, 1000)).toBe(1)
    expect(await b.incr(`${k}:n`, 1000, 4)).toBe(5)
    await ctx.advance(1100)
    expect(await b.get(k)).toBeNull()
    expect(await b.incr(`${k}:n`, 1000)).toBe(1)
    await b.del(`${k}:n`)
    expect(await b.get(`${k}:n`)).toBeNull()
  })

  it('reads several shared keys in one call, null for missing and expired ones', async () => {
    const b = await ctx.backend()
    const k = key('many')
    expect(await b.getMany([])).toEqual([])
    await b.set(`${k}:a`, '1', 60_000)
    await b.set(`${k}:short`, 'x', 500)
    await b.set(`${k}:c`, '{"epoch":0}', 60_000)
    expect(await b.getMany([`${k}:a`, `${k}:none`, `${k}:short`, `${k}:c`])).toEqual(['1', null, 'x', '{"epoch":0}'])
    await ctx.advance(600)
    expect(await b.getMany([`${k}:a`, `${k}:none`, `${k}:short`, `${k}:c`])).toEqual(['1', null, null, '{"epoch":0}'])
  })

  if (ctx.kind === 'redis') {
    it('gives every key a TTL and falls back to EVAL after a SCRIPT FLUSH', async () => {
      const b = (await ctx.backend()) as RedisBackend
      const admin = new Redis(TEST_REDIS_URL)
      try {
        const k = key('ttl')
        await b.consume(req([[k, 5, 2000]], [{ key: `${k}-q`, limit: 10, cost: 1, seed: 0, endsAt: Date.now() + 60_000 }]))
        const rateTtl = await admin.pttl(`${ctx.prefix}rl:${k}`)
        expect(rateTtl).toBeGreaterThan(1000)
        expect(rateTtl).toBeLessThanOrEqual(3100)
        const quotaTtl = await admin.pttl(`${ctx.prefix}q:${k}-q`)
        expect(quotaTtl).toBeGreaterThan(60_000)
        await admin.script('FLUSH')
        const after = await b.consume(req([[k, 5, 2000]]))
        expect(after.blocked).toBeNull()
        expect(after.rates[0]!.remaining).toBe(3)
      } finally {
        admin.disconnect()
      }
    })

    it('sends queued settlements in the same round trip as the next check, also after Redis lost its scripts', async () => {
      const b = (await ctx.backend()) as LimitBackend
      const admin = new Redis(TEST_REDIS_URL)
      try {
        for (const flush of [false, true]) {
          const k = key('piggy')
          const first = await b.consume(req([[k, 100, 10_000, 80]]))
          b.settle({ at: first.now, rates: [{ key: k, windowMs: 10_000, delta: -70 }], quotas: [] })
          if (flush) await admin.script('FLUSH')
          // no flush of the queue in between: the settlement rides ahead of this check
          const next = await b.consume(req([[k, 100, 10_000, 50]]))
          expect(next.blocked).toBeNull()
          expect(next.rates[0]!.remaining).toBe(40)
        }
      } finally {
        admin.disconnect()
      }
    })

    it('agrees across connections: instances share one window', async () => {
      const a = await ctx.backend()
      const b = await ctx.backend()
      const k = key('shared')
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).consume(req([[k, 5, 10_000]]))))
      expect(results.filter((r) => r.blocked === null)).toHaveLength(5)
    })
  }
})
