/**
 * The anthropic adapter's native Messages calls (messages, messagesStream, countTokens) against the fake
 * Anthropic upstream over loopback: bodies pass untouched but for `model`, answers and events keep the
 * upstream's bytes, the client's anthropic headers are forwarded, and failures map like the chat path's.
 */
import { Agent } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { collect, proxyErrorOf } from '../../helpers/async.js'
import { rawJsonOf } from '../../../src/core/raw-json.js'
import { createAnthropicAdapter } from '../../../src/providers/anthropic/index.js'
import { UpstreamError } from '../../../src/providers/shared/upstream-error.js'
import type { CallContext, NativeEvent, ProviderAdapter } from '../../../src/providers/types.js'
import { fakeTokenCount, startFakeAnthropic, type FakeAnthropic } from '../../fakes/anthropic-upstream.js'
import { readTestdata, testdataDir } from '../../helpers/testdata.js'

let fake: FakeAnthropic
let agent: Agent
let adapter: ProviderAdapter

beforeAll(async () => {
  fake = await startFakeAnthropic()
  agent = new Agent()
  adapter = createAnthropicAdapter({ name: 'claude', type: 'anthropic', baseUrl: fake.url, settings: { anthropic_version: '2023-01-01', headers: { 'Anthropic-Beta': 'operator-beta-1', 'x-operator': 'yes' } } }, { dispatcher: agent })
})
afterAll(async () => {
  await agent.close()
  await fake.close()
})
beforeEach(() => {
  fake.respond(() => undefined)
  fake.play({ kind: 'text', text: 'Hello there, native.', usage: { prompt: 12, completion: 5 } })
})

const ctx = (over: Partial<CallContext> = {}): CallContext => ({
  apiKey: fake.apiKey,
  upstreamModel: 'claude-upstream-1',
  signal: AbortSignal.timeout(5000),
  requestId: 'req_native',
  timeouts: { firstByteMs: 5000 },
  ...over,
})

/** What Claude Code sends (trimmed): fields the chat path does not know, under a beta header. */
const claudeCodeBody = () => ({
  model: 'claude-sonnet-4-5-20250929',
  max_tokens: 32000,
  system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }],
  messages: [{ role: 'user', content: [{ type: 'text', text: 'what is the weather in Paris?' }] }],
  metadata: { user_id: '{"device_id":"abc"}' },
  thinking: { type: 'enabled', budget_tokens: 31999 },
  context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
})
const clientHeaders = {
  'anthropic-version': '2023-06-01',
  'anthropic-beta': 'claude-code-20250219,context-management-2025-06-27,operator-beta-1',
  authorization: 'Bearer client-key-must-not-leak',
  'x-api-key': 'client-key-must-not-leak',
  'x-claude-code-session-id': 'fe45da2c',
}

describe('anthropic native messages', () => {
  it('passes the body through untouched but for model, and answers with the upstream bytes', async () => {
    const body = claudeCodeBody()
    const msg = await adapter.messages!(body, ctx({ passHeaders: clientHeaders }))
    const seen = fake.requests.at(-1)!
    expect(seen.path).toBe('/v1/messages')
    expect(seen.body).toEqual({ ...body, model: 'claude-upstream-1' })
    expect(body.model).toBe('claude-sonnet-4-5-20250929')
    expect(msg).toMatchObject({ type: 'message', model: 'claude-upstream-1', content: [{ type: 'text', text: 'Hello there, native.' }], usage: { input_tokens: 12, output_tokens: 5 } })
    expect(JSON.parse(String(rawJsonOf(msg)))).toEqual(msg)
  })

  it('forwards the client anthropic-version and betas merged with the provider ones, never the client key', async () => {
    await adapter.messages!(claudeCodeBody(), ctx({ passHeaders: clientHeaders }))
    const h = fake.requests.at(-1)!.headers
    expect(h['x-api-key']).toBe(fake.apiKey)
    expect(h.authorization).toBeUndefined()
    expect(h['anthropic-version']).toBe('2023-06-01')
    expect(h['anthropic-beta']).toBe('claude-code-20250219,context-management-2025-06-27,operator-beta-1')
    expect(h['x-claude-code-session-id']).toBe('fe45da2c')
    expect(h['x-operator']).toBe('yes')
  })

  it('uses the provider version and betas when the client sends none (and the fake then refuses the beta-only field)', async () => {
    await adapter.messages!({ max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }, ctx())
    const h = fake.requests.at(-1)!.headers
    expect(h['anthropic-version']).toBe('2023-01-01')
    expect(h['anthropic-beta']).toBe('operator-beta-1')
    const err = await proxyErrorOf(() => adapter.messages!(claudeCodeBody(), ctx()))
    expect(err).toMatchObject({ status: 400, type: 'invalid_request_error', message: expect.stringContaining('context_management: Extra inputs are not permitted') })
  })

  it('sends stream: false when a non-streaming call carries stream: true', async () => {
    await adapter.messages!({ ...claudeCodeBody(), stream: true }, ctx({ passHeaders: clientHeaders }))
    expect(fake.requests.at(-1)!.body.stream).toBe(false)
  })

  it.each([
    [529, 'overloaded_error', { status: 502, code: 'upstream_overloaded', retryable: true, fault: 'server' }],
    [500, 'api_error', { status: 502, code: 'upstream_unavailable', retryable: true, fault: 'server' }],
    [429, 'rate_limit_error', { status: 429, code: 'rate_limit_exceeded', retryable: true, fault: 'rate_limited' }],
    [401, 'authentication_error', { status: 502, code: 'upstream_auth_failed', retryable: false, fault: 'key_rejected' }],
    [400, 'invalid_request_error', { status: 400, type: 'invalid_request_error', retryable: false, fault: 'bad_request' }],
  ])('maps an upstream %i (%s) like the chat path does', async (status, type, expected) => {
    fake.respond(() => ({ kind: 'json', status, body: { type: 'error', error: { type, message: `native ${type}` } }, headers: { 'retry-after': '7' } }))
    const err = await proxyErrorOf(() => adapter.messages!(claudeCodeBody(), ctx({ passHeaders: clientHeaders })))
    expect(err).toBeInstanceOf(UpstreamError)
    expect(err).toMatchObject({ ...expected, message: expect.stringContaining(`native ${type}`) })
    expect(err.message).not.toContain('client-key')
    if (status === 429) expect(err.headers['retry-after']).toBe('7')
  })

  it('maps a streamed call refused with 529 before any event', async () => {
    fake.play({ kind: 'error', status: 529, message: 'Overloaded' })
    const err = await proxyErrorOf(() => adapter.messagesStream!(claudeCodeBody(), ctx({ passHeaders: clientHeaders })))
    expect(err).toMatchObject({ status: 502, code: 'upstream_overloaded', retryable: true })
  })
})

describe('anthropic native message streams', () => {
  const rebuild = (events: NativeEvent[]) => events.map((e) => `event: ${e.type}\ndata: ${String(rawJsonOf(e))}`).join('\n\n')

  it.skipIf(testdataDir === null).each([
    ['whole', undefined],
    ['a byte at a time', 1],
  ])('relays the recorded stream.txt %s, every event with its exact bytes (ping included)', async (_label, pieceSize) => {
    const text = readTestdata('anthropic/stream.txt')
    fake.respond(() => ({ kind: 'raw-sse', text, pieceSize }))
    const events = await collect(await adapter.messagesStream!(claudeCodeBody(), ctx({ passHeaders: clientHeaders })))
    expect(rebuild(events)).toBe(text)
    expect(events.map((e) => e.type)).toContain('ping')
    expect(String(rawJsonOf(events.find((e) => e.type === 'ping')))).toBe('{"type": "ping"}')
    expect(events.at(-1)!.type).toBe('message_stop')
    expect(fake.requests.at(-1)!.body).toMatchObject({ model: 'claude-upstream-1', stream: true, context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] } })
  })

  it('yields the events as they arrive, thinking and signature deltas untouched', async () => {
    fake.play({ kind: 'text', text: 'Sunny.', usage: { prompt: 30, completion: 9 }, thinking: [{ thinking: 'Check the weather.', signature: 'sig-abc==' }] })
    const events = await collect(await adapter.messagesStream!(claudeCodeBody(), ctx({ passHeaders: clientHeaders })))
    const deltas = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta as Record<string, string>)
    expect(deltas.filter((d) => d.type === 'thinking_delta').map((d) => d.thinking).join('')).toBe('Check the weather.')
    expect(deltas.find((d) => d.type === 'signature_delta')).toEqual({ type: 'signature_delta', signature: 'sig-abc==' })
    expect(events.every((e) => typeof rawJsonOf(e) === 'string')).toBe(true)
  })

  it('throws a mid-stream error event as a ProxyError after yielding the events before it', async () => {
    fake.play({ kind: 'stream_error', text: 'Partial answer', message: 'Overloaded mid-stream' })
    const seen: string[] = []
    const err = await proxyErrorOf(async () => {
      for await (const e of await adapter.messagesStream!(claudeCodeBody(), ctx({ passHeaders: clientHeaders }))) seen.push(e.type)
    })
    expect(seen).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_delta'])
    expect(err).toMatchObject({ status: 502, code: 'upstream_overloaded', message: expect.stringContaining('Overloaded mid-stream') })
  })

  it('throws upstream_stream_truncated when the stream ends before message_stop', async () => {
    const text = 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
    fake.respond(() => ({ kind: 'raw-sse', text }))
    const seen: string[] = []
    const err = await proxyErrorOf(async () => {
      for await (const e of await adapter.messagesStream!(claudeCodeBody(), ctx({ passHeaders: clientHeaders }))) seen.push(e.type)
    })
    expect(seen).toEqual(['message_start'])
    expect(err).toMatchObject({ status: 502, code: 'upstream_stream_truncated' })
  })
})

describe('anthropic count_tokens', () => {
  it('posts the body with the upstream model to /v1/messages/count_tokens and returns the count', async () => {
    const body = { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'How many tokens is this?' }], system: 'Be brief.' }
    const counted = await adapter.countTokens!(body, ctx({ passHeaders: { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'token-counting-2024-11-01' } }))
    const seen = fake.requests.at(-1)!
    expect(seen.path).toBe('/v1/messages/count_tokens')
    expect(seen.body).toEqual({ ...body, model: 'claude-upstream-1' })
    expect(seen.headers['anthropic-beta']).toBe('token-counting-2024-11-01,operator-beta-1')
    expect(counted).toEqual({ input_tokens: fakeTokenCount(seen.body) })
    expect(counted.input_tokens).toBeGreaterThan(5)
  })

  it('maps a refused count like any upstream error', async () => {
    const err = await proxyErrorOf(() => adapter.countTokens!({ model: 'x', messages: [] }, ctx()))
    expect(err).toMatchObject({ status: 400, message: expect.stringContaining('at least one message') })
  })
})
