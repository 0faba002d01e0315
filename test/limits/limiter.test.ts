import { describe, expect, it } from 'vitest'
import { ProxyError } from '../../src/core/errors.js'
import { formatReset } from '../../src/limits/answers.js'
import { Limiter, type AdmitInput } from '../../src/limits/limiter.js'
import { MemoryBackend } from '../../src/limits/memory.js'
import { QuotaBook, type QuotaStore, type QuotaUsageRow } from '../../src/limits/quotas.js'
import type { ConsumeOutcome, ConsumeRequest, LimitBackend, SettleOp } from '../../src/limits/types.js'
import type { ConfigSnapshot } from '../../src/store/snapshot.js'
import { client, rpm, snapshot, tpm } from './fixtures.js'

const T0 = Date.UTC(2030, 5, 15, 23, 59, 0)

function setup(snap: ConfigSnapshot, opts: { backend?: LimitBackend; stored?: QuotaUsageRow[] } = {}) {
  let now = T0
  const clock = () => now
  const limited: string[] = []
  const writes: QuotaUsageRow[][] = []
  // an in-memory stand-in for the quota_usage table
  const table = new Map<string, QuotaUsageRow>((opts.stored ?? []).map((r) => [`${r.clientId}|${r.period}|${r.periodKey}`, { ...r }]))
  const store: QuotaStore = {
    add: async (rows) => {
      writes.push(rows.map((r) => ({ ...r })))
      for (const r of rows) {
        const k = `${r.clientId}|${r.period}|${r.periodKey}`
        const prev = table.get(k)
        table.set(k, { ...r, tokens: (prev?.tokens ?? 0) + r.tokens })
      }
    },
    load: async (day, month) => [...table.values()].filter((r) => r.periodKey === day || r.periodKey === month).map((r) => ({ ...r })),
  }
  const quotas = new QuotaBook({ store, clock, flushMs: 0 })
  let current = snap
  const limiter = new Limiter({
    config: () => current,
    quotas,
    clock,
    backend: opts.backend ?? new MemoryBackend({ clock, sweepMs: 0 }),
    metrics: { rateLimited: (scope) => limited.push(scope) },
  })
  return {
    limiter,
    quotas,
    limited,
    writes,
    advance: (ms: number) => void (now += ms),
    reconfigure: (s: ConfigSnapshot) => void (current = s),
  }
}

async function refusal(p: Promise<unknown>): Promise<ProxyError> {
  try {
    await p
  } catch (err) {
    if (err instanceof ProxyError) return err
    throw err
  }
  throw new Error('expected the request to be refused')
}

const chat = (c: ReturnType<typeof client>, tokens = 10, extra: Partial<AdmitInput> = {}): AdmitInput => ({ client: c, ip: '10.0.0.1', model: 'gpt-4o-mini', tokens: () => tokens, ...extra })

describe('limiter', () => {
  it('adds no headers and no cost when no limit applies', async () => {
    const c = client(1)
    const { limiter } = setup(snapshot([c]))
    const a = await limiter.admit(chat(c))
    expect(a.headers).toEqual({})
  })

  it('applies client, global, ip and model limits together and reports the tightest', async () => {
    const c = client(1, { limits: [rpm(10)] })
    const snap = snapshot([c], { limits: { global: { rpm: 100 }, ip: { requests: '3/10s' }, model: { 'gpt-4o-mini': { requests: ['5/1m'] } } } })
    const { limiter, limited } = setup(snap)
    const first = await limiter.admit(chat(c))
    expect(first.headers).toMatchObject({ 'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '10s' })
    await limiter.admit(chat(c))
    await limiter.admit(chat(c))
    const err = await refusal(limiter.admit(chat(c)))
    expect(err).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' })
    expect(err.message).toMatch(/IP 10\.0\.0\.1 on requests per 10s: limit 3/)
    expect(err.headers['retry-after']).toBe('10')
    expect(err.headers['x-ratelimit-remaining-requests']).toBe('0')
    expect(limited).toEqual(['ip'])
    // another IP is not limited by the first one's window, but the model's 5/1m counts everyone
    await limiter.admit(chat(c, 10, { ip: '10.0.0.2' }))
    await limiter.admit(chat(c, 10, { ip: '10.0.0.2' }))
    const model = await refusal(limiter.admit(chat(c, 10, { ip: '10.0.0.3' })))
    expect(model.message).toMatch(/model 'gpt-4o-mini'/)
  })

  it('charges the token estimate first and settles with the reported usage', async () => {
    const c = client(1, { limits: [tpm(100)] })
    const { limiter } = setup(snapshot([c]))
    const a = await limiter.admit(chat(c, 60))
    expect(a.headers).toMatchObject({ 'x-ratelimit-limit-tokens': '100', 'x-ratelimit-remaining-tokens': '40' })
    expect(a.headers['x-ratelimit-limit-requests']).toBeUndefined()
    const tooBig = await refusal(limiter.admit(chat(c, 50)))
    expect(tooBig.message).toMatch(/on tokens per 1m: limit 100, used 60, requested about 50/)
    a.settle({ usage: { total_tokens: 12 }, served: true })
    const b = await limiter.admit(chat(c, 50))
    expect(b.headers['x-ratelimit-remaining-tokens']).toBe('38')
  })

  it('refunds the estimate of a request that failed before an upstream answered', async () => {
    const c = client(1, { limits: [tpm(100)] })
    const { limiter } = setup(snapshot([c]))
    const a = await limiter.admit(chat(c, 90))
    a.settle({ usage: null, served: false })
    const b = await limiter.admit(chat(c, 90))
    expect(b.headers['x-ratelimit-remaining-tokens']).toBe('10')
    // served without usage (a stream cut short): the estimate stands
    b.settle({ usage: null, served: true })
    await refusal(limiter.admit(chat(c, 20)))
  })

  it('refuses a request larger than a token limit for good (no retry)', async () => {
    const c = client(1, { limits: [tpm(100)] })
    const { limiter } = setup(snapshot([c]))
    const err = await refusal(limiter.admit(chat(c, 500)))
    expect(err.message).toMatch(/Request too large/)
    expect(err.headers['x-should-retry']).toBe('false')
  })

  it('does not charge tokens to a request that uses none (model listings)', async () => {
    const c = client(1, { limits: [rpm(5), tpm(10)], dailyTokens: 1 })
    const { limiter } = setup(snapshot([c]))
    const a = await limiter.admit({ client: c, ip: null, model: null })
    expect(a.headers['x-ratelimit-remaining-requests']).toBe('4')
    expect(a.headers['x-ratelimit-limit-tokens']).toBeUndefined()
  })

  it('answers insufficient_quota when the daily quota is used up, until UTC midnight', async () => {
    const c = client(7, { dailyTokens: 1000, monthlyTokens: 100_000 })
    const stored: QuotaUsageRow[] = [
      { clientId: 7, period: 'day', periodKey: '2030-06-15', tokens: 950 },
      { clientId: 7, period: 'month', periodKey: '2030-06', tokens: 5000 },
    ]
    const { limiter, quotas, limited } = setup(snapshot([c]), { stored })
    await quotas.load()
    const a = await limiter.admit(chat(c, 40))
    expect(a.headers).toMatchObject({ 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '10', 'x-ratelimit-reset-tokens': '1m0s' })
    a.settle({ usage: { total_tokens: 45 }, served: true })
    const err = await refusal(limiter.admit(chat(c, 10)))
    expect(err).toMatchObject({ status: 429, type: 'insufficient_quota', code: 'insufficient_quota' })
    expect(err.message).toMatch(/1000 tokens per UTC day .* has used 995/)
    expect(err.headers['retry-after']).toBe('60')
    expect(err.headers['x-should-retry']).toBe('false')
    expect(limited).toEqual(['quota'])
    expect(quotas.used(7, 'day', '2030-06-15')).toBe(995)
  })

  it('starts a fresh daily quota at UTC midnight while the month keeps counting', async () => {
    const c = client(7, { dailyTokens: 100, monthlyTokens: 1000 })
    const { limiter, advance } = setup(snapshot([c]))
    const a = await limiter.admit(chat(c, 90))
    a.settle({ usage: { total_tokens: 90 }, served: true })
    await refusal(limiter.admit(chat(c, 20)))
    advance(60_000) // 2030-06-16 00:00
    const b = await limiter.admit(chat(c, 20))
    expect(b.headers['x-ratelimit-remaining-tokens']).toBe('80')
    b.settle({ usage: { total_tokens: 20 }, served: true })
  })

  it('applies changed limits as soon as the snapshot changes', async () => {
    const c = client(1, { limits: [rpm(1)] })
    const { limiter, reconfigure } = setup(snapshot([c]))
    await limiter.admit(chat(c))
    await refusal(limiter.admit(chat(c)))
    const raised = client(1, { limits: [rpm(3)] })
    reconfigure(snapshot([raised]))
    const a = await limiter.admit(chat(raised))
    expect(a.headers['x-ratelimit-remaining-requests']).toBe('1') // the window's history is kept
  })

  it('fails open to local limits when the shared backend is down, and closed when the policy says so', async () => {
    const c = client(1, { limits: [rpm(2)] })
    const shared = new FlakyBackend()
    const { limiter, reconfigure } = setup(snapshot([c]), { backend: shared })
    await limiter.admit(chat(c))
    expect(shared.calls).toBe(1)
    shared.up = false
    limiter.backendStatus('down', 'ECONNREFUSED')
    expect(limiter.health()).toMatchObject({ backend: 'redis', degraded: expect.stringContaining('ECONNREFUSED'), onFailure: 'open' })
    // local limits apply while it is down (a fresh local window)
    await limiter.admit(chat(c))
    await limiter.admit(chat(c))
    await refusal(limiter.admit(chat(c)))
    expect(shared.calls).toBe(1)
    reconfigure(snapshot([c], { redis: { on_failure: 'closed' } }))
    const closed = await refusal(limiter.admit(chat(c)))
    expect(closed).toMatchObject({ status: 503, type: 'service_unavailable', code: 'service_unavailable' })
    shared.up = true
    limiter.backendStatus('up')
    expect(limiter.health().degraded).toBeNull()
    await limiter.admit(chat(c))
    expect(shared.calls).toBe(2)
  })

  it('keeps shared state (circuits, cooldowns) in the shared backend, and locally while it is down', async () => {
    const shared = new FlakyBackend()
    const { limiter } = setup(snapshot([client(1)]), { backend: shared })
    await limiter.shared.set('circuit:p:1', 'open', 60_000)
    expect(shared.state.get('circuit:p:1')).toBe('open')
    expect(await limiter.shared.get('circuit:p:1')).toBe('open')
    shared.up = false
    expect(await limiter.shared.incr('cooldown:k:2', 1000)).toBe(1)
    expect(shared.state.has('cooldown:k:2')).toBe(false)
  })

  it('falls back when the shared backend fails mid-request', async () => {
    const c = client(1, { limits: [rpm(2)] })
    const shared = new FlakyBackend()
    shared.throwOnce = true
    const { limiter } = setup(snapshot([c]), { backend: shared })
    const a = await limiter.admit(chat(c))
    expect(a.headers['x-ratelimit-remaining-requests']).toBe('1')
  })

  it('records actual usage for every client, for quotas and listings, written behind', async () => {
    const c = client(3)
    const { limiter, quotas, writes } = setup(snapshot([c]))
    for (let i = 0; i < 5; i++) (await limiter.admit(chat(c))).settle({ usage: { total_tokens: 100 }, served: true })
    expect(writes).toHaveLength(0)
    await quotas.flush()
    expect(writes).toEqual([
      [
        { clientId: 3, period: 'day', periodKey: '2030-06-15', tokens: 500 },
        { clientId: 3, period: 'month', periodKey: '2030-06', tokens: 500 },
      ],
    ])
    expect(quotas.used(3, 'day', '2030-06-15')).toBe(500)
  })
})

describe('x-ratelimit reset format', () => {
  it("writes durations as OpenAI does ('1s', '6m0s')", () => {
    expect(formatReset(20)).toBe('20ms')
    expect(formatReset(1000)).toBe('1s')
    expect(formatReset(1500)).toBe('1.5s')
    expect(formatReset(360_000)).toBe('6m0s')
    expect(formatReset(3_723_000)).toBe('1h2m3s')
  })
})

/** A stand-in for Redis that can go down. */
class FlakyBackend implements LimitBackend {
  readonly kind = 'redis' as const
  up = true
  throwOnce = false
  calls = 0
  readonly #inner = new MemoryBackend({ clock: () => T0, sweepMs: 0 })
  available(): boolean {
    return this.up
  }
  async consume(req: ConsumeRequest): Promise<ConsumeOutcome> {
    if (this.throwOnce) {
      this.throwOnce = false
      throw new Error('Command timed out')
    }
    if (!this.up) throw new Error('Connection is closed.')
    this.calls++
    return this.#inner.consume(req)
  }
  settle(op: SettleOp): void {
    this.#inner.settle(op)
  }
  async close(): Promise<void> {}
  // SharedState
  readonly state = new Map<string, string>()
  async get(key: string): Promise<string | null> {
    if (!this.up) throw new Error('down')
    return this.state.get(key) ?? null
  }
  async set(key: string, value: string): Promise<void> {
    if (!this.up) throw new Error('down')
    this.state.set(key, value)
  }
  async incr(key: string, _ttlMs: number, by = 1): Promise<number> {
    if (!this.up) throw new Error('down')
    const v = Number(this.state.get(key) ?? 0) + by
    this.state.set(key, String(v))
    return v
  }
  async del(key: string): Promise<void> {
    this.state.delete(key)
  }
}
