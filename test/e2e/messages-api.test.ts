import Anthropic from '@anthropic-ai/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { FAKE_ANTHROPIC_KEY, startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { chatCompletion, startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, cliOk, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const weather: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

describe('POST /v1/messages through the proxy, with the official Anthropic SDK', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let anthropic: FakeAnthropic
  let openai: FakeUpstream
  let sdk: Anthropic
  let narrow: Anthropic
  let agentKey: string

  beforeAll(async () => {
    anthropic = await startFakeAnthropic()
    openai = await startFakeOpenAI()
    await cliOk(data.dir, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'tool_calls=true', '--setting', 'chunks=4'])
    await cliOk(data.dir, ['providers', 'add', 'claude', '--type', 'anthropic', '--base-url', anthropic.url])
    await cliOk(data.dir, ['keys', 'add', 'claude', '--label', 'main'], FAKE_ANTHROPIC_KEY)
    await cliOk(data.dir, ['providers', 'add', 'oai', '--type', 'openai', '--base-url', openai.url])
    await cliOk(data.dir, ['keys', 'add', 'oai', '--label', 'main'], 'sk-openai-upstream')
    await cliOk(data.dir, ['models', 'add', 'claude-sonnet-4-5*', '--target', 'claude/claude-sonnet-4-5-20250929'])
    await cliOk(data.dir, ['models', 'add', 'mock-model', '--target', 'mock/mock-1'])
    await cliOk(data.dir, ['models', 'add', 'gpt-via-messages', '--target', 'oai/gpt-4o-mini'])
    agentKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'agent'])).stdout)
    const narrowKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'narrow', '--models', 'mock-model', '--rpm', '1'])).stdout)
    proxy = await startTestProxy(data.dir)
    sdk = new Anthropic({ apiKey: agentKey, baseURL: proxy.url, maxRetries: 0 })
    narrow = new Anthropic({ apiKey: narrowKey, baseURL: proxy.url, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    await anthropic?.close()
    await openai?.close()
    data.cleanup()
  })

  describe('a translated provider (the mock)', () => {
    it('answers messages.create with a Message', async () => {
      const msg = await sdk.messages.create({ model: 'mock-model', max_tokens: 100, messages: [{ role: 'user', content: 'Hello there' }] })
      expect(msg.type).toBe('message')
      expect(msg.role).toBe('assistant')
      expect(msg.model).toBe('mock-model')
      expect(msg.stop_reason).toBe('end_turn')
      expect(msg.content).toEqual([{ type: 'text', text: 'Mock reply from mock-1: you said "Hello there".' }])
      expect(msg.usage.output_tokens).toBeGreaterThan(0)
    })

    it('streams with messages.stream() into the same final message', async () => {
      const stream = sdk.messages.stream({ model: 'mock-model', max_tokens: 100, messages: [{ role: 'user', content: 'stream me' }] })
      let text = ''
      stream.on('text', (t) => (text += t))
      const final = await stream.finalMessage()
      expect(text).toBe('Mock reply from mock-1: you said "stream me".')
      expect(final.content).toEqual([{ type: 'text', text }])
      expect(final.stop_reason).toBe('end_turn')
      expect(final.usage.output_tokens).toBeGreaterThan(0)
    })

    it('does a tool-use round trip, streamed and not', async () => {
      const first = await sdk.messages.create({ model: 'mock-model', max_tokens: 200, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }] })
      expect(first.stop_reason).toBe('tool_use')
      const use = first.content.find((b) => b.type === 'tool_use')!
      expect(use).toMatchObject({ type: 'tool_use', name: 'get_weather' })
      expect(typeof (use as Anthropic.ToolUseBlock).input).toBe('object')

      const streamed = await sdk.messages.stream({ model: 'mock-model', max_tokens: 200, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }] }).finalMessage()
      const streamedUse = streamed.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock
      expect(streamedUse.input).toEqual((use as Anthropic.ToolUseBlock).input)

      const second = await sdk.messages.create({
        model: 'mock-model',
        max_tokens: 200,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.type === 'tool_use' ? use.id : '', content: 'Sunny, 21 C' }] },
        ],
      })
      expect(second.stop_reason).toBe('end_turn')
      expect(second.content[0]!.type).toBe('text')
    })

    it('returns thinking blocks when thinking is asked for', async () => {
      const msg = await sdk.messages.create({ model: 'mock-model', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [{ role: 'user', content: 'think' }] })
      expect(msg.content[0]!.type).toBe('thinking')
      const block = msg.content[0] as Anthropic.ThinkingBlock
      expect(block.thinking.length).toBeGreaterThan(0)
      expect(block.signature.length).toBeGreaterThan(0)
      const streamed = await sdk.messages.stream({ model: 'mock-model', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [{ role: 'user', content: 'think' }] }).finalMessage()
      expect(streamed.content.map((b) => b.type)).toEqual(['thinking', 'text'])
      expect((streamed.content[0] as Anthropic.ThinkingBlock).signature).toBe(block.signature)
    })

    it('estimates count_tokens with the tokenizer', async () => {
      const { input_tokens } = await sdk.messages.countTokens({ model: 'mock-model', messages: [{ role: 'user', content: 'How many tokens is this sentence?' }] })
      expect(input_tokens).toBeGreaterThan(5)
      expect(input_tokens).toBeLessThan(40)
    })
  })

  describe('an Anthropic provider (native)', () => {
    it('forwards the body untouched but for the model, with the anthropic headers', async () => {
      anthropic.play({ kind: 'text', text: 'native answer', usage: { prompt: 11, completion: 3 } })
      const before = anthropic.requests.length
      const msg = await sdk.messages.create(
        { model: 'claude-sonnet-4-5-20250929', max_tokens: 64, system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], metadata: { user_id: 'u-1' }, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'anthropic-beta': 'interleaved-thinking-2025-05-14', 'anthropic-version': '2023-06-01' } },
      )
      expect(msg.content).toEqual([{ type: 'text', text: 'native answer' }])
      expect(msg.usage.input_tokens).toBe(11)
      const seen = anthropic.requests.slice(before).find((r) => r.path.startsWith('/v1/messages'))!
      expect(seen.body).toEqual({ model: 'claude-sonnet-4-5-20250929', max_tokens: 64, system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], metadata: { user_id: 'u-1' }, messages: [{ role: 'user', content: 'hi' }] })
      expect(seen.headers['x-api-key']).toBe(FAKE_ANTHROPIC_KEY)
      expect(seen.headers['anthropic-version']).toBe('2023-06-01')
      expect(seen.headers['anthropic-beta']).toContain('interleaved-thinking-2025-05-14')
      expect(seen.headers.authorization).toBeUndefined()
    })

    it("sends the client's own bytes on, all but the model it names upstream", async () => {
      anthropic.play({ kind: 'text', text: 'native answer', usage: { prompt: 11, completion: 3 } })
      const before = anthropic.requests.length
      // spacing, a number written 1.0, an escaped and a raw non-ASCII character, in a request large
      // enough for the proxy to keep its bytes (KEEP_REQUEST_BYTES_FROM)
      const messages = `"messages": [{"role":"user","content":"${'caf\\u00e9 — café '.repeat(200)}"}]`
      const res = await fetch(`${proxy.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': agentKey, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: `{ "model": "claude-sonnet-4-5", "max_tokens" : 64,\n  "temperature": 1.0, ${messages}, "metadata": {"user_id" :"u-1"} }`,
      })
      expect(res.status).toBe(200)
      const seen = anthropic.requests.slice(before).find((r) => r.path.startsWith('/v1/messages'))!
      // each member as sent, in the order the validated request holds them
      expect(seen.raw).toBe(`{"model":"claude-sonnet-4-5-20250929",${messages},"max_tokens" : 64,"temperature": 1.0,"metadata": {"user_id" :"u-1"}}`)
    })

    it('relays a stream event by event, and a tool call in it', async () => {
      anthropic.play({ kind: 'tool_call', id: 'toolu_1', name: 'get_weather', args: { city: 'Paris' }, text: 'Let me check.', usage: { prompt: 20, completion: 9 } })
      const final = await sdk.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }] }).finalMessage()
      expect(final.stop_reason).toBe('tool_use')
      expect(final.content).toEqual([
        { type: 'text', text: 'Let me check.' },
        expect.objectContaining({ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }),
      ])
      expect(final.usage.output_tokens).toBe(9)
    })

    it('answers count_tokens with the upstream exact count', async () => {
      const before = anthropic.requests.length
      const { input_tokens } = await sdk.messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'count me' }] })
      const seen = anthropic.requests.slice(before).find((r) => r.path.startsWith('/v1/messages/count_tokens'))!
      expect(seen).toBeDefined()
      expect(input_tokens).toBeGreaterThan(0)
    })

    it('passes an upstream 529 on as overloaded after trying (OverloadedError)', async () => {
      anthropic.play({ kind: 'error', status: 529, message: 'Overloaded' })
      await expect(sdk.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] })).rejects.toSatisfy((e: unknown) => e instanceof Anthropic.APIError && (e.status === 529 || e.status === 502))
      anthropic.play({ kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } })
    })
  })

  describe('an OpenAI provider (translated)', () => {
    it('sends a chat completion upstream and answers with a Message', async () => {
      openai.respond(() => ({ kind: 'json', body: chatCompletion('gpt-4o-mini', 'from openai') }))
      const before = openai.requests.length
      const msg = await sdk.messages.create({ model: 'gpt-via-messages', max_tokens: 50, system: 'Be kind.', messages: [{ role: 'user', content: 'hi' }] })
      expect(msg.content).toEqual([{ type: 'text', text: 'from openai' }])
      const seen = openai.requests.slice(before)[0]!
      expect(seen.path).toBe('/v1/chat/completions')
      expect(seen.body.messages).toEqual([
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'hi' },
      ])
      expect(seen.body.max_completion_tokens).toBe(50)
    })

    it('records no usage, as chat does, when the upstream reported none: not the zeros the Message must show', async () => {
      const { usage: _, ...withoutUsage } = chatCompletion('gpt-4o-mini', 'no usage here')
      openai.respond(() => ({ kind: 'json', body: withoutUsage }))
      const { data: msg, response } = await sdk.messages.create({ model: 'gpt-via-messages', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).withResponse()
      expect(msg.usage).toMatchObject({ input_tokens: 0, output_tokens: 0 })
      const id = response.headers.get('x-request-id')!
      const row = await eventually(
        async () => (await cli(data.dir, ['audit', 'show', id, '--json'])).stdout,
        (out) => out.startsWith('{'),
      )
      expect(JSON.parse(row)).toMatchObject({ status: 200, prompt_tokens: null, completion_tokens: null })
    })
  })

  describe('errors in Anthropic\'s shape, raised as the SDK\'s classes', () => {
    it('AuthenticationError for a wrong key', async () => {
      const wrong = new Anthropic({ apiKey: 'sk-proxy-nope', baseURL: proxy.url, maxRetries: 0 })
      await expect(wrong.messages.create({ model: 'mock-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.AuthenticationError)
    })

    it('NotFoundError for an unknown model, BadRequestError for a bad body', async () => {
      await expect(sdk.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.NotFoundError)
      const bad = sdk.messages.create({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming)
      await expect(bad).rejects.toBeInstanceOf(Anthropic.BadRequestError)
      await expect(bad).rejects.toMatchObject({ error: { type: 'error', error: { type: 'invalid_request_error', message: "Missing required parameter: 'max_tokens'." } } })
    })

    it('PermissionDeniedError for a model the client may not use, RateLimitError past its limit', async () => {
      await expect(narrow.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError)
      await narrow.messages.create({ model: 'mock-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).catch(() => undefined)
      await expect(narrow.messages.create({ model: 'mock-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.RateLimitError)
    })

    it('answers a wrong method in Anthropic\'s shape', async () => {
      const res = await fetch(`${proxy.url}/v1/messages`, { method: 'GET' })
      expect(res.status).toBe(405)
      expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } })
    })
  })

  it('is recorded with its endpoint in the audit trail', async () => {
    const paths = await eventually(
      async () => new Set((JSON.parse((await cli(data.dir, ['audit', 'ls', '--limit', '100', '--json'])).stdout) as Array<{ path: string }>).map((row) => row.path)),
      (seen) => seen.has('/v1/messages') && seen.has('/v1/messages/count_tokens'),
    )
    expect(paths.has('/v1/messages')).toBe(true)
  })
})
