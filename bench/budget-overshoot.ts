/**
 * `npx tsx bench/budget-overshoot.ts [--requests N] [--budget USD] [--json]`: how exactly a money budget
 * holds across instances. Not a test: it prints figures.
 *
 * Two proxy instances (in this process, each with its own limiter and Redis connection) share one store
 * and one Redis under a fresh key prefix. A client has a daily budget (default $0.01); a fake OpenAI
 * upstream, priced at $1 per 1M input and $4 per 1M output tokens, answers after 100 ms writing every
 * token its max_tokens allows (the worst case), and reports the prompt as the proxy's tokenizer counts it.
 * N requests (default 200; a quarter streamed) with max_tokens from 50 to 800 go out at once,
 * alternating instances. With --ignore-cap the upstream writes 1,000 tokens whatever max_tokens says
 * (the case a reservation cannot cover, see docs/spend-control.md). The run
 * reports the requests admitted, the spend admitted against the budget (the store's total once written,
 * and the audit trail's sum of costs), and the overshoot (spend beyond the budget; target: 0).
 * Needs Redis at 127.0.0.1:6379 (or PROXY_TEST_REDIS_URL); traffic stays on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { startFakeOpenAI } from '../test/fakes/openai-upstream.js'
import { chatChunks, chatCompletion } from '../test/fakes/openai-upstream.js'
import { estimateChatPromptTokens, Tokenizer } from '../src/limits/estimate.js'
import { cli, keyFrom, testEnv } from '../test/helpers/proxy.js'
import { startProxy, type RunningProxy } from '../src/server/start.js'
import { openStore } from '../src/store/db.js'
import { silentLogger } from '../src/telemetry/logger.js'

const REDIS = process.env.PROXY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

const { values } = parseArgs({ options: { requests: { type: 'string', default: '200' }, budget: { type: 'string', default: '0.01' }, 'ignore-cap': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } })
const N = Number(values.requests)
const budgetUsd = Number(values.budget)

const dir = mkdtempSync(path.join(tmpdir(), 'proxy-bench-budget-'))
const prefix = `proxy-bench:budget:${process.pid}:${randomBytes(4).toString('hex')}:`
const redisEnv = { PROXY_REDIS_URL: REDIS, PROXY_REDIS_PREFIX: prefix, PROXY_REDIS_TIMEOUT_MS: '5000' }
const env = testEnv(dir, redisEnv)

async function proxyCli(args: string[], stdin?: string): Promise<string> {
  const r = await cli(dir, args, { env: redisEnv, ...(stdin === undefined ? {} : { stdin }) })
  if (r.code !== 0) throw new Error(`proxy ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

const tokenizer = new Tokenizer()
await tokenizer.load()
const upstream = await startFakeOpenAI()
upstream.respond((req) => {
  if (!req.path.endsWith('/chat/completions')) return undefined
  const prompt = estimateChatPromptTokens(req.body, tokenizer.counter())
  const completion = values['ignore-cap'] ? 1000 : Number(req.body.max_tokens ?? req.body.max_completion_tokens ?? 1000)
  const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  if (req.body.stream) return { kind: 'sse', events: chatChunks(req.body.model, ['once ', 'upon ', 'a time'], usage), gapMs: 30 }
  return { kind: 'json', body: chatCompletion(req.body.model, 'once upon a time', usage), delayMs: 100 }
})
const instances: RunningProxy[] = []
try {
  await proxyCli(['providers', 'add', 'fake', '--type', 'openai', '--base-url', upstream.url])
  await proxyCli(['keys', 'add', 'fake', '--label', 'main'], 'sk-fake-upstream')
  await proxyCli(['models', 'add', 'm', '--target', 'fake/story-model'])
  await proxyCli(['prices', 'set', 'story-model', '--input', '1', '--output', '4'])
  const key = keyFrom(await proxyCli(['clients', 'add', 'bench', '--daily-budget', String(budgetUsd)]))
  for (let i = 0; i < 2; i++) instances.push(await startProxy({ dataDir: dir, port: 0, env, logger: silentLogger(), keychain: null }))

  const started = performance.now()
  const results = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const maxTokens = 50 + ((i * 37) % 751)
      const res = await fetch(`${instances[i % 2]!.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', max_tokens: maxTokens, stream: i % 4 === 0, messages: [{ role: 'user', content: `request ${i}: tell me a long story` }] }),
      })
      await res.text()
      return res.status
    }),
  )
  const seconds = (performance.now() - started) / 1000
  await Promise.all(instances.map((p) => p.close()))
  instances.length = 0
  const store = await openStore({ dataDir: dir, env, keychain: null })
  const totals = await store.db.selectFrom('period_totals').select(['amount']).where('scope', '=', 'spend:client').where('period', '=', 'day').execute()
  const audit = await store.db.selectFrom('audit').select((eb) => [eb.fn.sum<number>('cost_usd').as('cost'), eb.fn.countAll<number>().as('n')]).where('status', '=', 200).executeTakeFirstOrThrow()
  await store.close()
  const spentMicros = totals.reduce((s, r) => s + Number(r.amount), 0)
  const budgetMicros = Math.round(budgetUsd * 1e6)
  const figures = {
    requests: N,
    instances: 2,
    admitted: results.filter((s) => s === 200).length,
    refused_429: results.filter((s) => s === 429).length,
    other: results.filter((s) => s !== 200 && s !== 429).length,
    budget_usd: budgetUsd,
    spent_usd: spentMicros / 1e6,
    audit_cost_usd: Math.round(Number(audit.cost) * 1e6) / 1e6,
    overshoot_usd: Math.max(0, spentMicros - budgetMicros) / 1e6,
    seconds: Math.round(seconds * 100) / 100,
  }
  if (values.json) console.log(JSON.stringify(figures))
  else {
    console.log(`${figures.requests} concurrent requests on ${figures.instances} instances sharing Redis, daily budget $${figures.budget_usd}${values['ignore-cap'] ? ', upstream ignoring max_tokens' : ''}:`)
    console.log(`  admitted ${figures.admitted}, refused with 429 ${figures.refused_429}, other ${figures.other} (${figures.seconds} s)`)
    console.log(`  spend admitted against the budget: $${figures.spent_usd.toFixed(6)} (audit trail: $${figures.audit_cost_usd.toFixed(6)})`)
    console.log(`  overshoot: $${figures.overshoot_usd.toFixed(6)}`)
  }
} finally {
  await Promise.all(instances.map((p) => p.close()))
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
  const redis = new Redis(REDIS)
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length) await redis.del(...keys)
  redis.disconnect()
}
