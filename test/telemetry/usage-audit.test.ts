/**
 * Usage totals equal what the upstream reported, costs follow the price table (and a provider's
 * price_in/price_out), and the audit trail reads back through `proxy usage` and `proxy audit`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { chatChunks, chatCompletion, startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, keyFrom, tempDataDir, testEnv, withTestStore } from '../helpers/proxy.js'

const NON_STREAM_USAGE = { prompt_tokens: 1000, completion_tokens: 2000, total_tokens: 3000 }
const STREAM_USAGE = { prompt_tokens: 300, completion_tokens: 40, total_tokens: 340 }
const LOCAL_USAGE = { prompt_tokens: 500_000, completion_tokens: 250_000, total_tokens: 750_000 }

describe('usage, cost and the audit trail', () => {
  const data = tempDataDir()
  let fake: FakeUpstream
  let proxy: RunningProxy
  let alice: string
  let bob: string

  const chat = (key: string, model: string, content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }], ...extra }),
    }).then(async (res) => ({ status: res.status, text: await res.text() }))

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    fake.respond((req) => {
      const text = JSON.stringify(req.body?.messages ?? '')
      if (text.includes('bad request')) return { kind: 'json', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } } }
      if (req.body?.model === 'llama-3-8b') return { kind: 'json', body: chatCompletion('llama-3-8b', 'local answer', LOCAL_USAGE) }
      if (req.body?.stream) return { kind: 'sse', events: chatChunks(req.body.model, ['Hello', ' from', ' fake'], STREAM_USAGE) }
      return { kind: 'json', body: chatCompletion(req.body?.model, 'Hello from fake', NON_STREAM_USAGE) }
    })
    expect((await cli(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', fake.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'up', '--label', 'main'], { stdin: 'sk-test-usage-0000000000\n' })).code).toBe(0)
    expect((await cli(data.dir, ['providers', 'add', 'local', '--type', 'openai-compatible', '--base-url', fake.url, '--setting', 'price_in=1', '--setting', 'price_out=2'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'up/gpt-4o-mini-2024-07-18'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'local-model', '--target', 'local/llama-3-8b'])).code).toBe(0)
    alice = keyFrom((await cli(data.dir, ['clients', 'add', 'alice', '--capture'])).stdout)
    bob = keyFrom((await cli(data.dir, ['clients', 'add', 'bob'])).stdout)
    proxy = await startProxy({
      dataDir: data.dir,
      port: 0,
      env: testEnv(data.dir),
      logger: silentLogger(),
      keychain: null,
      reloadPollMs: 50,
      observability: { captureMaxBytes: 2000, auditFlushMs: 50 },
    })

    // Looking a model up is audited, but it is not a model call: no usage.
    expect((await fetch(`${proxy.url}/v1/models/gpt-4o-mini`, { headers: { authorization: `Bearer ${bob}` } })).status).toBe(200)
    for (let i = 0; i < 3; i++) expect((await chat(alice, 'gpt-4o-mini', `question ${i}`)).status).toBe(200)
    expect((await chat(alice, 'gpt-4o-mini', 'stream one', { stream: true }, { 'x-request-id': 'stream-req-1' })).status).toBe(200)
    expect((await chat(alice, 'gpt-4o-mini', 'x'.repeat(5000), { stream: true })).status).toBe(200)
    expect((await chat(bob, 'local-model', 'run locally')).status).toBe(200)
    expect((await chat(bob, 'gpt-4o-mini', 'bad request please')).status).toBe(400)
    expect((await chat(bob, 'no-such-model', 'x')).status).toBe(404)
    await proxy.close()
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  it('adds up the tokens the upstream reported, per client, model and day', async () => {
    const rows = await withTestStore(data.dir, (store) => store.db.selectFrom('usage').selectAll().orderBy('client').orderBy('model').execute())
    const day = new Date().toISOString().slice(0, 10)
    expect(rows.map(({ cost_usd, ...r }) => r)).toEqual([
      { day, client: 'alice', model: 'gpt-4o-mini', requests: 5, errors: 0, prompt_tokens: 3 * 1000 + 2 * 300, completion_tokens: 3 * 2000 + 2 * 40, cache_hits: 0, saved_usd: 0 },
      { day, client: 'bob', model: 'gpt-4o-mini', requests: 1, errors: 1, prompt_tokens: 0, completion_tokens: 0, cache_hits: 0, saved_usd: 0 },
      { day, client: 'bob', model: 'local-model', requests: 1, errors: 0, prompt_tokens: 500_000, completion_tokens: 250_000, cache_hits: 0, saved_usd: 0 },
    ])
    // gpt-4o-mini-2024-07-18 is priced as gpt-4o-mini ($0.15 / $0.60 per 1M); 'local' overrides with $1 / $2.
    expect(rows[0]!.cost_usd).toBeCloseTo((3600 * 0.15 + 6080 * 0.6) / 1e6, 12)
    expect(rows[1]!.cost_usd).toBe(0)
    expect(rows[2]!.cost_usd).toBeCloseTo(1.0, 12)
  })

  it('prints usage by client, model and day', async () => {
    const byClient = await cli(data.dir, ['usage', '--json'])
    expect(byClient.code).toBe(0)
    const parsed = JSON.parse(byClient.stdout) as { rows: Array<Record<string, unknown>>; total: Record<string, number> }
    expect(parsed.rows).toEqual([
      { client: 'bob', requests: 2, errors: 1, promptTokens: 500_000, completionTokens: 250_000, costUsd: 1, cacheHits: 0, savedUsd: 0 },
      { client: 'alice', requests: 5, errors: 0, promptTokens: 3600, completionTokens: 6080, costUsd: expect.closeTo(0.004188, 9), cacheHits: 0, savedUsd: 0 },
    ])
    expect(parsed.total).toMatchObject({ requests: 7, promptTokens: 503_600, completionTokens: 256_080 })

    const byModel = await cli(data.dir, ['usage', '--by', 'model', '--since', '7d'])
    expect(byModel.code).toBe(0)
    const lines = byModel.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^MODEL\s+REQUESTS\s+ERRORS\s+TOKENS_IN\s+TOKENS_OUT\s+COST_USD$/)
    expect(lines[1]).toMatch(/^local-model\s+1\s+0\s+500000\s+250000\s+\$1\.00$/)
    expect(lines[2]).toMatch(/^gpt-4o-mini\s+6\s+1\s+3600\s+6080\s+\$0\.004188$/)
    expect(lines[3]).toMatch(/^TOTAL\s+7\s+1\s+503600\s+256080\s+\$1\.00$/)

    const byDay = JSON.parse((await cli(data.dir, ['usage', '--by', 'day', '--json', '--client', 'alice'])).stdout) as { rows: Array<{ day: string; requests: number }> }
    expect(byDay.rows).toEqual([expect.objectContaining({ day: new Date().toISOString().slice(0, 10), requests: 5 })])
    const future = await cli(data.dir, ['usage', '--since', '2999-01-01'])
    expect(future.stdout).toContain('No usage recorded since 2999-01-01')
    expect((await cli(data.dir, ['usage', '--by', 'week'])).code).not.toBe(0)
  })

  it('lists and filters audit rows', async () => {
    const all = JSON.parse((await cli(data.dir, ['audit', 'ls', '--json'])).stdout) as Array<Record<string, unknown>>
    expect(all).toHaveLength(9)
    expect(all[0]).toMatchObject({ client: 'bob', model: 'no-such-model', status: 404, error_code: 'model_not_found', captured: false })
    expect(all.every((r) => !('request_body' in r))).toBe(true)
    const alices = JSON.parse((await cli(data.dir, ['audit', 'ls', '--client', 'alice', '--json'])).stdout) as Array<Record<string, unknown>>
    expect(alices).toHaveLength(5)
    expect(alices.every((r) => r.captured === true && r.provider === 'up' && r.upstream_model === 'gpt-4o-mini-2024-07-18' && r.key_label === 'main')).toBe(true)
    expect(JSON.parse((await cli(data.dir, ['audit', 'ls', '--status', 'error', '--json'])).stdout)).toHaveLength(2)
    expect(JSON.parse((await cli(data.dir, ['audit', 'ls', '--status', '4xx', '--model', 'gpt-4o-mini', '--json'])).stdout)).toHaveLength(1)
    expect(JSON.parse((await cli(data.dir, ['audit', 'ls', '--since', '1h', '--limit', '3', '--json'])).stdout)).toHaveLength(3)
    expect(JSON.parse((await cli(data.dir, ['audit', 'ls', '--since', '2999-01-01T00:00:00Z', '--json'])).stdout)).toHaveLength(0)
    expect((await cli(data.dir, ['audit', 'ls', '--status', 'teapot'])).code).not.toBe(0)

    const table = await cli(data.dir, ['audit', 'ls', '--client', 'bob'])
    expect(table.stdout.split('\n')[0]).toMatch(/^TIME\s+REQUEST\s+CLIENT\s+MODEL\s+PROVIDER\s+STATUS\s+MS\s+TOKENS\s+ATTEMPTS$/)
    expect(table.stdout).toContain('404 model_not_found')
    expect(table.stdout).toContain('500000/250000')
  })

  it('shows one request, with the reassembled stream and capped bodies', async () => {
    const shown = await cli(data.dir, ['audit', 'show', 'stream-req-1', '--json'])
    expect(shown.code).toBe(0)
    const row = JSON.parse(shown.stdout) as Record<string, any>
    expect(row).toMatchObject({ request_id: 'stream-req-1', client: 'alice', stream: 1, status: 200, prompt_tokens: 300, completion_tokens: 40, attempts: 1, fallback: null })
    expect(row.ttft_ms).toBeGreaterThan(0)
    expect(row.ttft_ms).toBeLessThanOrEqual(row.latency_ms)
    expect(row.upstream_ms).toBeLessThanOrEqual(row.latency_ms)
    expect(JSON.parse(row.request_body).messages[0].content).toBe('stream one')
    // The stream is kept as its reassembled text, not as SSE.
    const response = JSON.parse(row.response_body)
    expect(response).toMatchObject({ stream: true, choices: [{ index: 0, content: 'Hello from fake', finish_reason: 'stop' }] })
    expect(row.response_body).not.toContain('data:')

    const text = await cli(data.dir, ['audit', 'show', 'stream-req-1'])
    expect(text.stdout).toContain('served by  up/gpt-4o-mini-2024-07-18 with key \'main\'')
    expect(text.stdout).toContain('first token after')
    expect(text.stdout).toContain('response body:')

    const rows = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().execute())
    const long = rows.find((r) => r.request_body?.includes('xxxxx'))!
    expect(Buffer.byteLength(long.request_body!.split('…[truncated')[0]!, 'utf8')).toBeLessThanOrEqual(2000)
    expect(long.request_body).toMatch(/…\[truncated by proxy: \d+ of \d+ bytes cut\]$/)
    // bob has no capture: nothing kept.
    expect(rows.filter((r) => r.client === 'bob').every((r) => r.request_body === null && r.response_body === null)).toBe(true)

    const missing = await cli(data.dir, ['audit', 'show', 'no-such-request'])
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain("No audit row for request 'no-such-request'")
  })

  it('prunes old rows and switches capture per client', async () => {
    const none = await cli(data.dir, ['audit', 'prune', '--older-than', '1d'])
    expect(none.stdout).toMatch(/^Deleted 0 audit rows from before /)
    await withTestStore(data.dir, (store) => store.db.updateTable('audit').set({ ts: '2020-01-01T00:00:00.000Z' }).where('client', '=', 'bob').execute())
    const pruned = JSON.parse((await cli(data.dir, ['audit', 'prune', '--older-than', '30d', '--json'])).stdout) as { deleted: number }
    expect(pruned.deleted).toBe(4)
    expect(JSON.parse((await cli(data.dir, ['audit', 'ls', '--json'])).stdout)).toHaveLength(5)
    // usage totals are kept
    expect(JSON.parse((await cli(data.dir, ['usage', '--json'])).stdout).total.requests).toBe(7)
    expect((await cli(data.dir, ['audit', 'prune', '--older-than', 'forever'])).code).not.toBe(0)

    expect((await cli(data.dir, ['audit', 'capture', 'bob', 'on'])).code).toBe(0)
    expect((await cli(data.dir, ['audit', 'capture', 'alice', 'off'])).code).toBe(0)
    const capture = await withTestStore(data.dir, (store) => store.db.selectFrom('clients').select(['name', 'capture']).orderBy('name').execute())
    expect(capture).toEqual([{ name: 'alice', capture: 0 }, { name: 'bob', capture: 1 }])
    expect((await cli(data.dir, ['audit', 'capture', 'nobody', 'on'])).code).not.toBe(0)
  })
})
