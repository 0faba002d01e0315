/**
 * The exact response cache over a real server, with the official SDKs as clients and fake upstreams that
 * count their calls: hits, misses and bypasses on every API, streamed replay read by the SDKs' stream
 * helpers, what is never cached, the TTL (injected clock), the byte bound, the admin API and CLI.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Clock } from '../../src/gateway/clock.js'
import type { RunningProxy } from '../../src/server/start.js'
import { FAKE_ANTHROPIC_KEY, startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { chatChunks, chatCompletion, startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, cliOk, eventually, keyFrom, startTestProxy, tempDataDir, withTestStore } from '../helpers/proxy.js'

class FakeClock implements Clock {
  t = 1_800_000_000_000
  now = () => this.t
  sleep = () => Promise.resolve()
}

describe('the exact response cache', () => {
  const data = tempDataDir()
  const clock = new FakeClock()
  let proxy: RunningProxy
  let openai: FakeUpstream
  let anthropic: FakeAnthropic
  let sdk: OpenAI
  let other: OpenAI
  let claude: Anthropic
  let keyA: string
  let limitedKey: string
  let quotaKey: string
  let capturedKey: string

  const upstreamCalls = (path: string) => openai.requests.filter((r) => r.path.startsWith(`/v1${path}`)).length
  const chat = (content: string, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}, client = sdk, headers?: Record<string, string>) =>
    client.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content }], ...extra }, { headers }).withResponse()

  beforeAll(async () => {
    openai = await startFakeOpenAI()
    anthropic = await startFakeAnthropic()
    // prices, so that a hit's saved cost shows: 1 and 2 USD per 1M tokens in and out
    await cliOk(data.dir, ['providers', 'add', 'oai', '--type', 'openai', '--base-url', openai.url, '--setting', 'price_in=1', '--setting', 'price_out=2'])
    await cliOk(data.dir, ['keys', 'add', 'oai', '--label', 'main'], 'sk-openai-main')
    await cliOk(data.dir, ['providers', 'add', 'claude', '--type', 'anthropic', '--base-url', anthropic.url])
    await cliOk(data.dir, ['keys', 'add', 'claude', '--label', 'main'], FAKE_ANTHROPIC_KEY)
    await cliOk(data.dir, ['policy', 'set', 'cached', '--file', '-'], JSON.stringify({ cache: { ttl: '10m' } }))
    await cliOk(data.dir, ['policy', 'set', 'tiny', '--file', '-'], JSON.stringify({ cache: { ttl: '10m', max_bytes: 1024 } }))
    await cliOk(data.dir, ['policy', 'set', 'mine', '--file', '-'], JSON.stringify({ cache: { per_client: true } }))
    await cliOk(data.dir, ['models', 'add', 'gpt', '--target', 'oai/gpt-upstream', '--policy', 'cached'])
    await cliOk(data.dir, ['models', 'add', 'emb', '--target', 'oai/emb-upstream', '--policy', 'cached'])
    await cliOk(data.dir, ['models', 'add', 'claude', '--target', 'claude/claude-sonnet-4-5', '--policy', 'cached'])
    await cliOk(data.dir, ['models', 'add', 'small', '--target', 'oai/small-upstream', '--policy', 'tiny'])
    await cliOk(data.dir, ['models', 'add', 'plain', '--target', 'oai/plain-upstream'])
    keyA = keyFrom((await cliOk(data.dir, ['clients', 'add', 'a'])).stdout)
    const keyB = keyFrom((await cliOk(data.dir, ['clients', 'add', 'b'])).stdout)
    limitedKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'limited', '--limit', 'requests=3/1m'])).stdout)
    quotaKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'quota', '--daily-tokens', '30'])).stdout)
    capturedKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'captured', '--capture'])).stdout)
    proxy = await startTestProxy(data.dir, { cacheClock: clock })
    sdk = new OpenAI({ apiKey: keyA, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    other = new OpenAI({ apiKey: keyB, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    claude = new Anthropic({ apiKey: keyA, baseURL: proxy.url, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    await openai?.close()
    await anthropic?.close()
    data.cleanup()
  })

  describe('chat completions', () => {
    it('answers a repeated request from the cache, for any client, without an upstream call', async () => {
      const before = upstreamCalls('/chat/completions')
      const first = await chat('hello cache')
      expect(first.response.headers.get('x-proxy-cache')).toBe('miss')
      const second = await chat('hello cache')
      expect(second.response.headers.get('x-proxy-cache')).toBe('hit')
      expect(second.data).toEqual(first.data)
      const third = await chat('hello cache', {}, other)
      expect(third.response.headers.get('x-proxy-cache')).toBe('hit')
      expect(upstreamCalls('/chat/completions')).toBe(before + 1)
    })

    it('keys on the whole request: another parameter is another answer, key order and user are not', async () => {
      const before = upstreamCalls('/chat/completions')
      expect((await chat('keyed', { temperature: 0.5 })).response.headers.get('x-proxy-cache')).toBe('miss')
      expect((await chat('keyed', { temperature: 0.7 })).response.headers.get('x-proxy-cache')).toBe('miss')
      expect((await chat('keyed', { temperature: 0.5, user: 'someone-else' })).response.headers.get('x-proxy-cache')).toBe('hit')
      const reordered = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
        body: `{"temperature":0.5,"messages":[{"content":"keyed","role":"user"}],"model":"gpt"}`,
      })
      expect(reordered.headers.get('x-proxy-cache')).toBe('hit')
      expect(upstreamCalls('/chat/completions')).toBe(before + 2)
    })

    it('bypasses on Cache-Control: no-store, x-proxy-cache: off and n > 1', async () => {
      await chat('bypass me')
      const before = upstreamCalls('/chat/completions')
      expect((await chat('bypass me', {}, sdk, { 'cache-control': 'no-store' })).response.headers.get('x-proxy-cache')).toBe('bypass')
      expect((await chat('bypass me', {}, sdk, { 'x-proxy-cache': 'off' })).response.headers.get('x-proxy-cache')).toBe('bypass')
      expect((await chat('bypass me', { n: 2 })).response.headers.get('x-proxy-cache')).toBe('bypass')
      expect((await chat('bypass me', { n: 2 })).response.headers.get('x-proxy-cache')).toBe('bypass')
      expect(upstreamCalls('/chat/completions')).toBe(before + 4)
    })

    it('never caches truncated answers or errors', async () => {
      openai.respond((req) => {
        const text = req.body?.messages?.[0]?.content
        if (text === 'cut short') return { kind: 'json', body: { ...chatCompletion('gpt-upstream', 'Hel'), choices: [{ index: 0, message: { role: 'assistant', content: 'Hel' }, finish_reason: 'length' }] } }
        if (text === 'cut stream') return { kind: 'sse', events: chatChunks('gpt-upstream', ['Hel']).map((c) => (c.choices[0]?.finish_reason === 'stop' ? { ...c, choices: [{ ...c.choices[0]!, finish_reason: 'length' }] } : c)) }
        if (text === 'refused') return { kind: 'json', status: 400, body: { error: { message: 'no', type: 'invalid_request_error', code: null, param: null } } }
        return undefined
      })
      try {
        const before = upstreamCalls('/chat/completions')
        expect((await chat('cut short')).response.headers.get('x-proxy-cache')).toBe('miss')
        expect((await chat('cut short')).response.headers.get('x-proxy-cache')).toBe('miss')
        for (let i = 0; i < 2; i++) {
          const refused = await chat('refused').catch((e: unknown) => e)
          expect(refused).toBeInstanceOf(OpenAI.APIError)
          expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(400)
          expect((refused as InstanceType<typeof OpenAI.APIError>).headers?.get('x-proxy-cache')).toBe('miss')
        }
        for (let i = 0; i < 2; i++) {
          const cut = await sdk.chat.completions.stream({ model: 'gpt', messages: [{ role: 'user', content: 'cut stream' }] }).finalChatCompletion()
          expect(cut.choices[0]!.finish_reason).toBe('length')
        }
        expect(upstreamCalls('/chat/completions')).toBe(before + 6)
      } finally {
        openai.respond(() => undefined)
      }
    })

    it('replays a stream as the same events, read by the SDK stream helper', async () => {
      const before = upstreamCalls('/chat/completions')
      const params = { model: 'gpt', messages: [{ role: 'user' as const, content: 'stream me' }], stream_options: { include_usage: true } }
      const first = await sdk.chat.completions.stream(params).finalChatCompletion()
      const stream = sdk.chat.completions.stream(params)
      const chunks: unknown[] = []
      for await (const chunk of stream) chunks.push(chunk)
      const second = await stream.finalChatCompletion()
      expect(second.choices[0]!.message.content).toBe('Hello from fake')
      expect(second).toEqual(first)
      expect(chunks.length).toBeGreaterThan(3)
      expect(upstreamCalls('/chat/completions')).toBe(before + 1)
      // the non-stream request is another entry: its answer is JSON
      expect((await chat('stream me')).response.headers.get('x-proxy-cache')).toBe('miss')
      const raw = await fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' }, body: JSON.stringify({ ...params, stream: true }) })
      expect(raw.headers.get('x-proxy-cache')).toBe('hit')
      expect(raw.headers.get('content-type')).toContain('text/event-stream')
      expect((await raw.text()).endsWith('data: [DONE]\n\n')).toBe(true)
    })

    it('keeps a separate cache per client when the policy says so', async () => {
      await cliOk(data.dir, ['models', 'add', 'mine', '--target', 'oai/gpt-upstream', '--policy', 'mine'])
      await eventually(() => sdk.models.list().then((l) => l.data.some((m) => m.id === 'mine')), Boolean)
      const ask = (client: OpenAI) => client.chat.completions.create({ model: 'mine', messages: [{ role: 'user', content: 'per client' }] }).withResponse()
      expect((await ask(sdk)).response.headers.get('x-proxy-cache')).toBe('miss')
      expect((await ask(sdk)).response.headers.get('x-proxy-cache')).toBe('hit')
      expect((await ask(other)).response.headers.get('x-proxy-cache')).toBe('miss')
    })

    it('sets no x-proxy-cache header where no cache policy applies', async () => {
      const r = await sdk.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
      expect(r.response.headers.get('x-proxy-cache')).toBeNull()
    })
  })

  it('caches legacy completions and embeddings', async () => {
    openai.respond((req) =>
      req.path.endsWith('/completions') && !req.path.includes('chat')
        ? { kind: 'json', body: { id: 'cmpl-1', object: 'text_completion', created: 1, model: 'gpt-upstream', choices: [{ index: 0, text: ' world', finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 } } }
        : undefined,
    )
    try {
      const c1 = await sdk.completions.create({ model: 'gpt', prompt: 'hello' }).withResponse()
      const c2 = await sdk.completions.create({ model: 'gpt', prompt: 'hello' }).withResponse()
      expect([c1.response.headers.get('x-proxy-cache'), c2.response.headers.get('x-proxy-cache')]).toEqual(['miss', 'hit'])
      expect(c2.data.choices[0]!.text).toBe(' world')
    } finally {
      openai.respond(() => undefined)
    }
    const before = upstreamCalls('/embeddings')
    const e1 = await sdk.embeddings.create({ model: 'emb', input: ['a', 'b'] }).withResponse()
    const e2 = await other.embeddings.create({ model: 'emb', input: ['a', 'b'] }).withResponse()
    expect([e1.response.headers.get('x-proxy-cache'), e2.response.headers.get('x-proxy-cache')]).toEqual(['miss', 'hit'])
    expect(e2.data.data).toHaveLength(2)
    expect(e2.data).toEqual(e1.data)
    expect(upstreamCalls('/embeddings')).toBe(before + 1)
  })

  it('caches /v1/responses, JSON and stream (responses.stream)', async () => {
    const before = upstreamCalls('/responses')
    const r1 = await sdk.responses.create({ model: 'gpt', input: 'cache this response' }).withResponse()
    const r2 = await sdk.responses.create({ model: 'gpt', input: 'cache this response' }).withResponse()
    expect([r1.response.headers.get('x-proxy-cache'), r2.response.headers.get('x-proxy-cache')]).toEqual(['miss', 'hit'])
    expect(r2.data.output_text).toBe(r1.data.output_text)
    const s1 = await sdk.responses.stream({ model: 'gpt', input: 'stream this response' }).finalResponse()
    const stream = sdk.responses.stream({ model: 'gpt', input: 'stream this response' })
    const types: string[] = []
    for await (const event of stream) types.push(event.type)
    const s2 = await stream.finalResponse()
    expect(s2.output_text).toBe(s1.output_text)
    expect(s2.output_text.length).toBeGreaterThan(0)
    expect(types[0]).toBe('response.created')
    expect(types.at(-1)).toBe('response.completed')
    expect(upstreamCalls('/responses')).toBe(before + 2)
    // a continuation reads stored responses of one client: not shared, so not cached
    const next = await sdk.responses.create({ model: 'gpt', input: 'and then?', previous_response_id: r1.data.id }).withResponse()
    expect(next.response.headers.get('x-proxy-cache')).toBe('bypass')
  })

  it('caches /v1/messages, JSON and stream (messages.stream().finalMessage())', async () => {
    const calls = () => anthropic.requests.filter((r) => r.path.startsWith('/v1/messages')).length
    const before = calls()
    const params = { model: 'claude', max_tokens: 100, messages: [{ role: 'user' as const, content: 'cache this message' }] }
    const m1 = await claude.messages.create(params).withResponse()
    const m2 = await claude.messages.create(params).withResponse()
    expect([m1.response.headers.get('x-proxy-cache'), m2.response.headers.get('x-proxy-cache')]).toEqual(['miss', 'hit'])
    expect(m2.data).toEqual(m1.data)
    const f1 = await claude.messages.stream({ ...params, messages: [{ role: 'user', content: 'stream this message' }] }).finalMessage()
    const f2 = await claude.messages.stream({ ...params, messages: [{ role: 'user', content: 'stream this message' }] }).finalMessage()
    expect(f2).toEqual(f1)
    expect(f2.content.length).toBeGreaterThan(0)
    expect(calls()).toBe(before + 2)
  })

  it('expires answers after the TTL (injected clock)', async () => {
    expect((await chat('ttl')).response.headers.get('x-proxy-cache')).toBe('miss')
    clock.t += 9 * 60_000
    expect((await chat('ttl')).response.headers.get('x-proxy-cache')).toBe('hit')
    clock.t += 2 * 60_000
    expect((await chat('ttl')).response.headers.get('x-proxy-cache')).toBe('miss')
  })

  it('holds the bytes of a policy within max_bytes, evicting the least recently used', async () => {
    const ask = (content: string) => sdk.chat.completions.create({ model: 'small', messages: [{ role: 'user', content }] }).withResponse()
    const seen = async (content: string) => (await ask(content)).response.headers.get('x-proxy-cache')
    // one answer of the fake takes about 450 of the 1024 bytes: the third evicts the least recently used
    expect(await seen('one')).toBe('miss')
    expect(await seen('two')).toBe('miss')
    expect(await seen('one')).toBe('hit')
    expect(await seen('three')).toBe('miss')
    expect(await seen('two')).toBe('miss')
    expect(await seen('three')).toBe('hit')
    const stats = (await (await fetch(`${proxy.url}/admin/v1/cache`, { headers: { authorization: `Bearer ${adminToken()}` } })).json()) as { bytes: number; maxBytes: number[] }
    expect(stats.maxBytes).toContain(1024)
  })

  it('counts hits in metrics, and in the audit trail and usage with the cost saved, but charges no tokens', async () => {
    await chat('audited')
    const hit = await chat('audited')
    expect(hit.response.headers.get('x-proxy-cache')).toBe('hit')
    const text = await proxy.metrics.registry.getSingleMetricAsString('proxy_cache_requests_total')
    expect(text).toMatch(/proxy_cache_requests_total\{result="hit"\} [1-9]/)
    expect(text).toMatch(/proxy_cache_requests_total\{result="miss"\} [1-9]/)
    expect(text).toMatch(/proxy_cache_requests_total\{result="bypass"\} [1-9]/)
    const requestId = hit.response.headers.get('x-request-id')!
    await proxy.audit.flush()
    const row = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().where('request_id', '=', requestId).executeTakeFirstOrThrow())
    expect(row).toMatchObject({ cache: 'hit', total_tokens: 0, attempts: 0, status: 200, provider: 'oai', upstream_model: 'gpt-upstream' })
    // the fake's answer: 5 tokens in, 7 out, at 1 and 2 USD per 1M
    expect(row.saved_usd).toBeCloseTo((5 * 1 + 7 * 2) / 1e6, 12)
    expect(row.cost_usd).toBe(0)
    const usage = await withTestStore(data.dir, (store) => store.db.selectFrom('usage').selectAll().where('client', '=', 'a').where('model', '=', 'gpt').executeTakeFirstOrThrow())
    expect(usage.cache_hits).toBeGreaterThan(0)
    expect(usage.saved_usd).toBeGreaterThan(0)
    // content capture keeps a hit's answer too
    const captured = await chat('audited', {}, new OpenAI({ apiKey: capturedKey, baseURL: `${proxy.url}/v1`, maxRetries: 0 }))
    expect(captured.response.headers.get('x-proxy-cache')).toBe('hit')
    await proxy.audit.flush()
    const capturedRow = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().where('request_id', '=', captured.response.headers.get('x-request-id')!).executeTakeFirstOrThrow())
    expect(capturedRow.response_body).toContain('Hello from fake')
    const printed = await cliOk(data.dir, ['usage', '--by', 'model', '--model', 'gpt'])
    expect(printed.stdout.split('\n')[0]).toMatch(/COST_USD\s+CACHE_HITS\s+SAVED_USD$/)
  })

  it("counts a hit toward the client's request limits, not its token quota", async () => {
    const limited = new OpenAI({ apiKey: limitedKey, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    expect((await chat('limited', {}, limited)).response.headers.get('x-proxy-cache')).toBe('miss')
    expect((await chat('limited', {}, limited)).response.headers.get('x-proxy-cache')).toBe('hit')
    expect((await chat('limited', {}, limited)).response.headers.get('x-proxy-cache')).toBe('hit')
    await expect(chat('limited', {}, limited)).rejects.toMatchObject({ status: 429 })
    // 30 tokens a day: the miss costs 12; ten hits charged as much would exhaust it
    const quota = new OpenAI({ apiKey: quotaKey, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    expect((await chat('quota', {}, quota)).response.headers.get('x-proxy-cache')).toBe('miss')
    for (let i = 0; i < 10; i++) expect((await chat('quota', {}, quota)).response.headers.get('x-proxy-cache')).toBe('hit')
  })

  describe('proxy cache stats|clear and the admin API', () => {
    it('reports and clears, by model or all', async () => {
      await chat('clear me')
      expect((await chat('clear me')).response.headers.get('x-proxy-cache')).toBe('hit')
      const stats = await cliOk(data.dir, ['cache', 'stats', '--json'])
      const figures = JSON.parse(stats.stdout) as { backend: string; entries: number; bytes: number }
      expect(figures.backend).toBe('memory')
      expect(figures.entries).toBeGreaterThan(0)
      expect(figures.bytes).toBeGreaterThan(0)
      const human = await cliOk(data.dir, ['cache', 'stats'])
      expect(human.stdout).toMatch(/answer\(s\), .* in memory\./)
      await cliOk(data.dir, ['cache', 'clear', '--model', 'emb'])
      expect((await chat('clear me')).response.headers.get('x-proxy-cache')).toBe('hit')
      const cleared = await cliOk(data.dir, ['cache', 'clear', '--model', 'gpt'])
      expect(cleared.stdout).toMatch(/Removed [1-9]\d* cached answer\(s\) for model 'gpt'/)
      expect((await chat('clear me')).response.headers.get('x-proxy-cache')).toBe('miss')
      const all = await fetch(`${proxy.url}/admin/v1/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken()}` } })
      expect(all.status).toBe(200)
      expect(((await all.json()) as { cleared: number }).cleared).toBeGreaterThan(0)
      expect((await chat('clear me')).response.headers.get('x-proxy-cache')).toBe('miss')
    })

    it('refuses a user key on the admin API, and says so from the CLI when no server runs', async () => {
      const res = await fetch(`${proxy.url}/admin/v1/cache`, { headers: { authorization: `Bearer ${keyA}` } })
      expect(res.status).toBe(403)
      const none = tempDataDir()
      try {
        const r = await cli(none.dir, ['cache', 'stats'])
        expect(r.code).toBe(1)
        expect(r.stderr).toMatch(/No proxy server found/)
      } finally {
        none.cleanup()
      }
    })
  })

  function adminToken(): string {
    // the local token the server wrote for local commands
    return readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
  }
})
