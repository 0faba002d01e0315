/**
 * Money budgets and teams in the limiter: reservations at the worst case, settlement with the actual cost,
 * the UTC day and month boundaries (injected clock), teams shared by their clients, and the alerts at 80%
 * and 100%, the webhook on a loopback receiver.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import type { Budgets, TeamConfig } from '../../src/core/config.js'
import { ProxyError } from '../../src/core/errors.js'
import { PriceBook } from '../../src/core/prices.js'
import { SpendBooks, type BudgetRule } from '../../src/limits/budgets.js'
import { Limiter, type AdmitInput } from '../../src/limits/limiter.js'
import { MemoryBackend } from '../../src/limits/memory.js'
import { QuotaBook } from '../../src/limits/quotas.js'
import { BudgetAlerts, type BudgetAlertEvent } from '../../src/telemetry/budget-alerts.js'
import type { ConfigSnapshot } from '../../src/store/snapshot.js'
import { client, rpm, snapshot } from './fixtures.js'

const usd = (n: number) => Math.round(n * 1_000_000)
// $1 per 1M tokens in and out: a token is a micro-dollar
const PRICE = { input: 1, output: 1 }

function setup(snap: ConfigSnapshot, start: number) {
  let now = start
  const clock = () => now
  const spend = new SpendBooks({ store: null, clock, flushMs: 0 })
  const seen: Array<[BudgetRule, number]> = []
  const limiter = new Limiter({
    config: () => snap,
    quotas: new QuotaBook({ store: null, clock, flushMs: 0 }),
    spend,
    clock,
    backend: new MemoryBackend({ clock, sweepMs: 0 }),
    onBudget: (rule, spent) => seen.push([rule, spent]),
  })
  return { limiter, seen, set: (t: number) => void (now = t) }
}

/** A chat request of `prompt` tokens allowing `maxOutput` more. */
const request = (c: ReturnType<typeof client>, prompt: number, maxOutput: number | null): AdmitInput => ({
  client: c,
  ip: null,
  model: 'm',
  tokens: () => prompt + (maxOutput ?? 0),
  spend: { price: PRICE, size: () => ({ prompt, maxOutput }) },
})

const served = (prompt: number, completion: number) => ({ usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }, served: true, provider: 'p', upstreamModel: 'model-x' })

function priced(snap: ConfigSnapshot): ConfigSnapshot {
  return { ...snap, prices: new PriceBook([{ model: 'model-x', provider: null, input: 1, output: 1 }]), providers: new Map([['p', { id: 1, name: 'p', type: 'mock', baseUrl: null, settings: {}, enabled: true, keys: [] }]]) }
}

async function refusal(p: Promise<unknown>): Promise<ProxyError> {
  const out = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!(out instanceof ProxyError)) throw new Error('expected a refusal')
  return out
}

describe('money budgets in the limiter', () => {
  it('reserves the worst case, settles the actual cost, and refuses what would not fit', async () => {
    const c = client(1, { budgets: { daily: 1000, monthly: null } })
    const { limiter } = setup(priced(snapshot([c])), Date.UTC(2030, 0, 10, 12))
    const a = await limiter.admit(request(c, 100, 400)) // 500 reserved
    expect(a.budgetRemaining()).toBe('0.000500')
    const e = await refusal(limiter.admit(request(c, 100, 450))) // 550 > 500 left
    expect(e.status).toBe(429)
    expect(e.code).toBe('insufficient_quota')
    expect(e.message).toContain("the daily budget of client 'client-1' is $0.001000 per UTC day")
    expect(e.message).toContain('resets at 2030-01-11T00:00:00.000Z')
    a.settle(served(100, 50)) // actual 150: 850 left
    const b = await limiter.admit(request(c, 100, 700))
    expect(b.budgetRemaining()).toBe('0.000050')
    b.settle({ usage: null, served: false }) // failed before an upstream answered: refunded
    const d = await limiter.admit(request(c, 100, 700))
    d.settle(served(100, 700)) // 950 spent
    await refusal(limiter.admit(request(c, 30, 30)))
    await limiter.admit(request(c, 20, 30))
  })

  it('assumes the default output cap when the request sets none', async () => {
    const c = client(1, { budgets: { daily: 4000, monthly: null } })
    const { limiter } = setup(priced(snapshot([c])), Date.UTC(2030, 0, 10, 12))
    const refused = await refusal(limiter.admit(request(c, 10, null)))
    expect(refused.message).toContain('may cost up to $0.004106')
    expect(refused.headers['x-proxy-budget-remaining']).toBe('0.004000')
    await limiter.admit(request(c, 10, 3000))
  })

  it('assumes the configured output cap instead (proxy budgets set --output-cap)', async () => {
    const c = client(1, { budgets: { daily: 4000, monthly: null } })
    const { limiter } = setup({ ...priced(snapshot([c])), budgetOutputCap: 1000 }, Date.UTC(2030, 0, 10, 12))
    const a = await limiter.admit(request(c, 10, null))
    expect(a.budgetRemaining()).toBe('0.002990')
  })

  it('starts afresh at the UTC day boundary, and at the month boundary for a monthly budget', async () => {
    const c = client(1, { budgets: { daily: 600, monthly: 1000 } })
    const { limiter, set } = setup(priced(snapshot([c])), Date.UTC(2030, 0, 31, 23, 59, 50))
    ;(await limiter.admit(request(c, 100, 400))).settle(served(100, 400)) // day 500, month 500
    expect((await refusal(limiter.admit(request(c, 100, 100)))).message).toContain("the daily budget of client 'client-1'")
    set(Date.UTC(2030, 1, 1, 0, 0, 1)) // a new day, and a new month
    ;(await limiter.admit(request(c, 100, 400))).settle(served(100, 400))
    set(Date.UTC(2030, 1, 2, 0, 0, 1)) // a new day, the same month: 500 of 1000 spent
    ;(await limiter.admit(request(c, 100, 300))).settle(served(100, 300))
    expect((await refusal(limiter.admit(request(c, 100, 100)))).message).toContain("the monthly budget of client 'client-1' is $0.001000 per UTC month")
    set(Date.UTC(2030, 2, 1, 0, 0, 1)) // March: both fresh
    await limiter.admit(request(c, 100, 400))
  })

  it('a team carries limits and budgets that all its clients draw on, besides their own', async () => {
    const team: TeamConfig = { id: 7, name: 'search', limits: [rpm(3)], dailyTokens: null, monthlyTokens: null, budgets: { daily: 10_000, monthly: null } }
    const a = client(1, { team })
    const b = client(2, { team, limits: [rpm(100)] })
    const { limiter } = setup(priced(snapshot([a, b])), Date.UTC(2030, 0, 10, 12))
    await limiter.admit(request(a, 10, 10))
    await limiter.admit(request(b, 10, 10))
    await limiter.admit(request(a, 10, 10))
    const e = await refusal(limiter.admit(request(b, 10, 10)))
    expect(e.code).toBe('rate_limit_exceeded')
    expect(e.message).toContain("team 'search' (all its clients together) on requests per 1m")
  })

  it("a team's budget refuses every client of the team once spent", async () => {
    const team: TeamConfig = { id: 7, name: 'search', limits: [], dailyTokens: null, monthlyTokens: null, budgets: { daily: 1000, monthly: null } }
    const a = client(1, { team })
    const b = client(2, { team })
    const { limiter } = setup(priced(snapshot([a, b])), Date.UTC(2030, 0, 10, 12))
    ;(await limiter.admit(request(a, 300, 300))).settle(served(300, 300))
    expect((await refusal(limiter.admit(request(b, 300, 300)))).message).toContain("the daily budget of team 'search'")
  })

  it('reports spend against each budget after settlement (for alerts and the gauge)', async () => {
    const global: Budgets = { daily: 2000, monthly: null }
    const c = client(1, { budgets: { daily: 1000, monthly: null } })
    const snap = { ...priced(snapshot([c])), globalBudgets: global }
    const { limiter, seen } = setup(snap, Date.UTC(2030, 0, 10, 12))
    ;(await limiter.admit(request(c, 100, 400))).settle(served(100, 300))
    expect(seen.map(([r, spent]) => [r.level, r.period, spent])).toEqual([
      ['global', 'day', 400],
      ['client', 'day', 400],
    ])
  })
})

describe('budget alerts', () => {
  const received: BudgetAlertEvent[] = []
  let failuresLeft = 1
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      // the first delivery fails: the alert is retried
      if (failuresLeft-- > 0) {
        res.writeHead(503).end()
        return
      }
      received.push(JSON.parse(body) as BudgetAlertEvent)
      res.writeHead(204).end()
    })
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('logs and POSTs the 80% and 100% crossings once each, and moves the gauge', async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
    const logged: object[] = []
    const gauge: Array<[string, string, string, number]> = []
    const alerts = new BudgetAlerts({
      logger: { warn: (obj) => logged.push(obj), error: (obj) => logged.push(obj) },
      metrics: { used: (level, name, period, ratio) => gauge.push([level, name, period, ratio]) },
      webhook: url,
      retryDelaysMs: [20, 40],
    })
    const c = client(1, { budgets: { daily: 1000, monthly: null } })
    const limiter = new Limiter({ config: () => priced(snapshot([c])), quotas: new QuotaBook({ store: null, flushMs: 0 }), spend: new SpendBooks({ store: null, flushMs: 0 }), onBudget: (r, spent) => alerts.observe(r, spent) })
    // 30%, 60%, 85% (crosses 80%), 95%, 100% (crosses 100%)
    for (const cost of [300, 300, 250, 100, 50]) (await limiter.admit(request(c, cost, 0))).settle(served(cost, 0))
    await alerts.drain()
    // the first POST failed and was retried, so the two may arrive in either order
    expect(received.map((e) => [e.threshold, e.level, e.name, e.period]).sort()).toEqual([
      [0.8, 'client', 'client-1', 'day'],
      [1, 'client', 'client-1', 'day'],
    ])
    expect(received.find((e) => e.threshold === 1)!.spent_usd).toBe(0.001)
    expect(logged.filter((l) => (l as { event?: string }).event === 'budget_threshold')).toHaveLength(2)
    expect(gauge.at(-1)).toEqual(['client', 'client-1', 'day', 1])
  })

  it('reports a crossing once across instances that share a claim (Redis in production)', async () => {
    received.length = 0
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
    const shared = new MemoryBackend({ sweepMs: 0 })
    const claim = async (id: string, ttlMs: number) => (await shared.incr(`budget-alert:${id}`, ttlMs)) === 1
    const logs: object[] = []
    const instances = [0, 1].map(() => new BudgetAlerts({ logger: { warn: (o) => logs.push(o), error: (o) => logs.push(o) }, webhook: url, retryDelaysMs: [20], claim }))
    const c = client(2, { budgets: { daily: 1000, monthly: null } })
    for (const alerts of instances) {
      const limiter = new Limiter({ config: () => priced(snapshot([c])), quotas: new QuotaBook({ store: null, flushMs: 0 }), spend: new SpendBooks({ store: null, flushMs: 0 }), onBudget: (r, spent) => alerts.observe(r, spent) })
      ;(await limiter.admit(request(c, 900, 0))).settle(served(900, 0))
    }
    await Promise.all(instances.map((a) => a.drain()))
    expect(received.map((e) => [e.threshold, e.name])).toEqual([[0.8, 'client-2']])
    expect(logs).toHaveLength(1)
  })
})
