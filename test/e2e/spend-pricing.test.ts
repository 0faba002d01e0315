/**
 * Costs follow the upstream's real usage: cached prompt tokens (OpenAI's prompt_tokens_details.cached_tokens,
 * Anthropic's cache_read_input_tokens / cache_creation_input_tokens) at their own rates, reasoning tokens as
 * output, stored prices over the built-in table. Real answers from the shared transcripts, with cache figures
 * filled in, through the fake upstreams; the official SDKs as clients.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { FAKE_ANTHROPIC_KEY, startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, cliOk, eventually, keyFrom, startTestProxy, tempDataDir, withTestStore } from '../helpers/proxy.js'
import { readTestdata, skipWithoutTestdata } from '../helpers/testdata.js'

/** The cost the audit trail recorded for a request (USD), once written behind. */
async function auditCost(dir: string, requestId: string): Promise<number> {
  return eventually(
    () => withTestStore(dir, (store) => store.db.selectFrom('audit').select('cost_usd').where('request_id', '=', requestId).executeTakeFirst()),
    (row) => row !== undefined,
    5000,
  ).then((row) => row!.cost_usd!)
}

const skip = skipWithoutTestdata('cached-token pricing')

describe.skipIf(skip)('prices from real usage', () => {
  const data = tempDataDir()
  let openai: FakeUpstream
  let anthropic: FakeAnthropic
  let proxy: RunningProxy
  let key = ''

  beforeAll(async () => {
    openai = await startFakeOpenAI()
    anthropic = await startFakeAnthropic()
    await cliOk(data.dir, ['providers', 'add', 'oai', '--type', 'openai', '--base-url', openai.url])
    await cliOk(data.dir, ['keys', 'add', 'oai', '--label', 'main'], 'sk-openai-upstream')
    await cliOk(data.dir, ['providers', 'add', 'claude', '--type', 'anthropic', '--base-url', anthropic.url])
    await cliOk(data.dir, ['keys', 'add', 'claude', '--label', 'main'], FAKE_ANTHROPIC_KEY)
    await cliOk(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'oai/gpt-4o-mini-2024-07-18'])
    await cliOk(data.dir, ['models', 'add', 'claude-haiku', '--target', 'claude/claude-haiku-4-5-20251001'])
    key = keyFrom((await cliOk(data.dir, ['clients', 'add', 'app'])).stdout)
    proxy = await startTestProxy(data.dir, { reloadPollMs: 50 })
  })
  afterAll(async () => {
    await proxy?.close()
    await openai?.close()
    await anthropic?.close()
    data.cleanup()
  })

  it('prices OpenAI cached prompt tokens at the cached rate and reasoning tokens as output', async () => {
    // the shape of a real chat completion's usage (the spec's example), with a cache hit and reasoning
    const spec = readTestdata('openai/openapi.yaml')
    expect(spec).toContain('prompt_tokens_details')
    const usage = { prompt_tokens: 1117, completion_tokens: 46, total_tokens: 1163, prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 30, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } }
    openai.respond((req) =>
      req.path.endsWith('/chat/completions')
        ? { kind: 'json', body: { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini-2024-07-18', choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, finish_reason: 'stop', logprobs: null }], usage, service_tier: 'default' } }
        : undefined,
    )
    const sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { response } = await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    // gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per 1M tokens
    const expected = (93 * 0.15 + 1024 * 0.075 + 46 * 0.6) / 1e6
    expect(await auditCost(data.dir, response.headers.get('x-request-id')!)).toBeCloseTo(expected, 9)

    // a stored price for this provider wins over the built-in table
    await cliOk(data.dir, ['prices', 'set', 'gpt-4o-mini', '--provider', 'oai', '--input', '1', '--output', '2', '--cached-input', '0.5'])
    const ls = JSON.parse((await cliOk(data.dir, ['prices', 'ls', '--json'])).stdout) as Array<{ model: string; provider: string; source: string }>
    expect(ls.find((l) => l.model === 'gpt-4o-mini-2024-07-18')).toMatchObject({ provider: 'oai', source: 'store' })
    await eventually(() => proxy.config.current().prices?.resolve('oai', 'gpt-4o-mini-2024-07-18')?.source, (s) => s === 'store', 3000)
    const again = await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(await auditCost(data.dir, again.response.headers.get('x-request-id')!)).toBeCloseTo((93 * 1 + 1024 * 0.5 + 46 * 2) / 1e6, 9)
    openai.respond(() => undefined)
  })

  it("prices Anthropic cache reads and cache writes at their own rates, natively on /v1/messages and translated on chat", async () => {
    const message = JSON.parse(readTestdata('anthropic/message.json')) as { usage: Record<string, unknown> }
    message.usage = { ...message.usage, cache_read_input_tokens: 2000, cache_creation_input_tokens: 400 }
    anthropic.respond((req) => (req.path === '/v1/messages' ? { kind: 'json', body: message } : undefined))
    // claude-haiku-4-5: $1 in, $0.10 cache read, $1.25 cache write, $5 out per 1M tokens
    const expected = (701 * 1 + 2000 * 0.1 + 400 * 1.25 + 93 * 5) / 1e6

    const native = new Anthropic({ apiKey: key, baseURL: proxy.url, maxRetries: 0 })
    const { response } = await native.messages.create({ model: 'claude-haiku', max_tokens: 200, messages: [{ role: 'user', content: 'weather?' }] }).withResponse()
    expect(await auditCost(data.dir, response.headers.get('x-request-id')!)).toBeCloseTo(expected, 9)

    const chat = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const translated = await chat.chat.completions.create({ model: 'claude-haiku', max_tokens: 200, messages: [{ role: 'user', content: 'weather?' }] }).withResponse()
    expect(translated.data.usage?.prompt_tokens_details?.cached_tokens).toBe(2000)
    expect(await auditCost(data.dir, translated.response.headers.get('x-request-id')!)).toBeCloseTo(expected, 9)
    anthropic.respond(() => undefined)
  })

  it('flags a model without a price in proxy prices ls, proxy usage and proxy doctor', async () => {
    await cliOk(data.dir, ['providers', 'add', 'local', '--type', 'mock'])
    await cliOk(data.dir, ['models', 'add', 'local-llm', '--target', 'local/my-finetune'])
    const ls = await cliOk(data.dir, ['prices', 'ls'])
    expect(ls.stdout).toMatch(/my-finetune\s+local\s+-\s+-\s+-\s+-\s+UNKNOWN/)
    await eventually(() => proxy.config.current().routes.has('local-llm'), (v) => v, 3000)
    const sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { response } = await sdk.chat.completions.create({ model: 'local-llm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(await auditCost(data.dir, response.headers.get('x-request-id')!)).toBe(0)
    const usage = await cliOk(data.dir, ['usage', '--by', 'model'])
    expect(usage.stdout).toContain('local/my-finetune')
    expect(usage.stdout).toMatch(/no known price/)
    // (doctor's exit code also reflects the fake Anthropic's missing model list: only the prices line matters here)
    const doctor = await cli(data.dir, ['doctor'])
    expect(doctor.stdout).toMatch(/WARN\s+prices\s+no price for local\/my-finetune/)
  })
})
