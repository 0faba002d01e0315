/**
 * Reasoning through the chat path to Anthropic: reasoning_effort as extended thinking under Anthropic's
 * rules, thinking_blocks sent back at the start of assistant turns, and thinking answers (whole and
 * streamed, also a byte at a time) as `reasoning` + `thinking_blocks`. The adapter-level cases run
 * against the fake Anthropic upstream, which refuses requests that break the thinking rules.
 */
import { Agent } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chatRequestSchema, type ChatCompletionChunk, type ChatRequest } from '../../../src/core/openai-schema.js'
import { createAnthropicAdapter } from '../../../src/providers/anthropic/index.js'
import { toMessagesRequest } from '../../../src/providers/anthropic/request.js'
import type { CallContext, ProviderAdapter } from '../../../src/providers/types.js'
import { startFakeAnthropic, validateMessagesRequest, type FakeAnthropic } from '../../fakes/anthropic-upstream.js'
import { collect, proxyErrorOf } from '../../helpers/async.js'

const TOOL = { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } }
const user = (content: string) => ({ role: 'user', content })
const SIGNED = { type: 'thinking', thinking: 'The user wants the weather; call the tool.', signature: 'EqQBCkYIBxgCKkD-signature==' }
const REDACTED = { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP' }
/** A turn that called a tool after thinking, and the tool's result: the second half of a tool loop. */
const toolLoop = (thinking: unknown[] | undefined) => [
  user('Weather in Paris?'),
  { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }], ...(thinking ? { thinking_blocks: thinking } : {}) },
  { role: 'tool', tool_call_id: 'toolu_1', content: 'Sunny, 24°C' },
]

function map(body: Record<string, unknown>) {
  const dropped: string[] = []
  const req = chatRequestSchema.parse({ model: 'm', messages: [user('Think first.')], ...body }) as ChatRequest
  const out = toMessagesRequest(req, { provider: 'claude', model: 'claude-x', defaultMaxTokens: 4096, warn: (p) => dropped.push(p) })
  // the fake upstream's checks are the real API's: every mapped request must pass them
  const problem = validateMessagesRequest({ method: 'POST', path: '/v1/messages', headers: { 'x-api-key': 'k', 'anthropic-version': 'v' }, body: out })
  return { out, dropped, problem }
}

describe('reasoning_effort to Anthropic thinking', () => {
  it.each([
    ['minimal', 1024],
    ['low', 2048],
    ['medium', 8192],
    ['high', 24576],
  ])('turns %s into a %i-token budget, raising the default max_tokens by it', (effort, budget) => {
    const { out, dropped, problem } = map({ reasoning_effort: effort })
    expect(out.thinking).toEqual({ type: 'enabled', budget_tokens: budget })
    expect(out.max_tokens).toBe(4096 + budget)
    expect(dropped).toEqual([])
    expect(problem).toBeNull()
  })

  it("sends no thinking for 'none' or no effort, and reports nothing", () => {
    for (const body of [{ reasoning_effort: 'none' }, {}]) {
      const { out, dropped } = map(body)
      expect(out.thinking).toBeUndefined()
      expect(out.max_tokens).toBe(4096)
      expect(dropped).toEqual([])
    }
  })

  it("keeps the client's max_tokens and clamps the budget under it; below the minimum budget thinking is off", () => {
    expect(map({ reasoning_effort: 'high', max_completion_tokens: 30000 }).out).toMatchObject({ max_tokens: 30000, thinking: { budget_tokens: 24576 } })
    const clamped = map({ reasoning_effort: 'high', max_tokens: 4000 })
    expect(clamped.out).toMatchObject({ max_tokens: 4000, thinking: { budget_tokens: 2000 } })
    expect(clamped.problem).toBeNull()
    expect(map({ reasoning_effort: 'low', max_tokens: 1500 }).out).toMatchObject({ max_tokens: 1500, thinking: { budget_tokens: 1024 } })
    const tiny = map({ reasoning_effort: 'low', max_tokens: 1000 })
    expect(tiny.out.thinking).toBeUndefined()
    expect(tiny.out.max_tokens).toBe(1000)
    expect(tiny.dropped).toEqual(['reasoning_effort'])
  })

  it('leaves out a temperature other than 1 and a top_p under 0.95, and says so', () => {
    const off = map({ reasoning_effort: 'low', temperature: 0.2, top_p: 0.5 })
    expect(off.out.temperature).toBeUndefined()
    expect(off.out.top_p).toBeUndefined()
    expect(off.dropped).toEqual(['temperature', 'top_p'])
    expect(off.problem).toBeNull()
    const kept = map({ reasoning_effort: 'low', temperature: 1, top_p: 0.97 })
    expect(kept.out).toMatchObject({ temperature: 1, top_p: 0.97 })
    expect(kept.dropped).toEqual([])
    // without thinking the sampling is the client's
    expect(map({ temperature: 0.2, top_p: 0.5 }).out).toMatchObject({ temperature: 0.2, top_p: 0.5 })
  })

  it('gives way to forced tool use and to a prefilled answer: thinking off, reported', () => {
    for (const body of [
      { tools: [TOOL], tool_choice: 'required' },
      { tools: [TOOL], tool_choice: { type: 'function', function: { name: 'get_weather' } } },
      { messages: [user('Say hi'), { role: 'assistant', content: 'Hi' }] },
    ]) {
      const { out, dropped, problem } = map({ reasoning_effort: 'medium', ...body })
      expect(out.thinking).toBeUndefined()
      expect(dropped).toEqual(['reasoning_effort'])
      expect(problem).toBeNull()
    }
  })

  it('refuses an effort that is not one of the five with a 400 naming reasoning_effort', async () => {
    const err = await proxyErrorOf(async () => map({ reasoning_effort: 'extreme' }))
    expect(err).toMatchObject({ status: 400, param: 'reasoning_effort' })
  })
})

describe('thinking_blocks sent back', () => {
  it('puts them first in the assistant turn, signatures intact, so a tool loop with thinking goes on', () => {
    const { out, problem, dropped } = map({ reasoning_effort: 'high', tools: [TOOL], messages: toolLoop([SIGNED, REDACTED]) })
    expect(problem).toBeNull()
    expect(dropped).toEqual([])
    expect(out.thinking).toEqual({ type: 'enabled', budget_tokens: 24576 })
    expect(out.messages[1]).toEqual({
      role: 'assistant',
      content: [SIGNED, REDACTED, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'Paris' } }],
    })
  })

  it('turns thinking off for a tool loop whose tool call came without thinking (say, from another provider)', () => {
    const { out, problem, dropped } = map({ reasoning_effort: 'high', tools: [TOOL], messages: toolLoop(undefined) })
    expect(out.thinking).toBeUndefined()
    expect(dropped).toEqual(['reasoning_effort'])
    expect(problem).toBeNull()
  })

  it('leaves them out when the request does not think', () => {
    const { out, problem } = map({ tools: [TOOL], messages: toolLoop([SIGNED]) })
    expect(out.messages[1]!.content.map((b) => b.type)).toEqual(['tool_use'])
    expect(problem).toBeNull()
  })

  it('refuses a malformed block with a 400 naming it', async () => {
    const err = await proxyErrorOf(async () => map({ reasoning_effort: 'low', messages: toolLoop([{ type: 'thinking', thinking: 'no signature' }]) }))
    expect(err).toMatchObject({ status: 400, param: 'messages[1].thinking_blocks[0]' })
  })
})

describe('thinking answers through the adapter', () => {
  let fake: FakeAnthropic
  let agent: Agent
  let adapter: ProviderAdapter
  const ctx = (): CallContext => ({ apiKey: fake.apiKey, upstreamModel: 'claude-think', signal: AbortSignal.timeout(5000), requestId: 'r', timeouts: { firstByteMs: 5000 } })
  const chat = (over: Record<string, unknown>) => chatRequestSchema.parse({ model: 'm', reasoning_effort: 'high', tools: [TOOL], messages: [user('Weather in Paris?')], ...over }) as ChatRequest
  type Delta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: string; thinking_blocks?: unknown[] }
  const deltas = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta as Delta | undefined).filter((d): d is Delta => d !== undefined)

  beforeAll(async () => {
    fake = await startFakeAnthropic()
    agent = new Agent()
    adapter = createAnthropicAdapter({ name: 'claude', type: 'anthropic', baseUrl: fake.url, settings: {} }, { dispatcher: agent })
  })
  afterAll(async () => {
    await agent.close()
    await fake.close()
  })
  beforeEach(() => {
    fake.respond(() => undefined)
    fake.play({ kind: 'tool_call', id: 'toolu_9', name: 'get_weather', args: { location: 'Paris' }, usage: { prompt: 40, completion: 90 }, thinking: [{ thinking: SIGNED.thinking, signature: SIGNED.signature }, { redacted: REDACTED.data }], cache: { read: 100, creation: 25 } })
  })

  it('answers with reasoning text, thinking blocks and usage with cache reads and writes', async () => {
    const res = await adapter.chat(chat({}), ctx())
    expect(fake.requests.at(-1)!.body.thinking).toEqual({ type: 'enabled', budget_tokens: 24576 })
    const message = res.choices[0]!.message
    expect(message.reasoning).toBe(SIGNED.thinking)
    expect(message.thinking_blocks).toEqual([SIGNED, REDACTED])
    expect(message.tool_calls).toEqual([{ id: 'toolu_9', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }])
    expect(res.usage).toEqual({ prompt_tokens: 165, completion_tokens: 90, total_tokens: 255, prompt_tokens_details: { cached_tokens: 100, cache_creation_tokens: 25 } })
  })

  it('round-trips: the answer sent back as the next turn passes the upstream thinking rules', async () => {
    const first = (await adapter.chat(chat({}), ctx())).choices[0]!.message
    fake.play({ kind: 'text', text: 'It is sunny in Paris.', usage: { prompt: 60, completion: 8 } })
    const next = chat({
      messages: [user('Weather in Paris?'), { role: 'assistant', content: first.content, tool_calls: first.tool_calls, thinking_blocks: first.thinking_blocks }, { role: 'tool', tool_call_id: 'toolu_9', content: 'Sunny' }],
    })
    const res = await adapter.chat(next, ctx())
    expect(res.choices[0]!.message.content).toBe('It is sunny in Paris.')
    expect(fake.requests.at(-1)!.body.messages[1].content.map((b: { type: string }) => b.type)).toEqual(['thinking', 'redacted_thinking', 'tool_use'])
    expect(fake.requests.at(-1)!.body.messages[1].content[0].signature).toBe(SIGNED.signature)
  })

  it('streams reasoning deltas first, then each block with its signature at its stop, then the tool call', async () => {
    const chunks = await collect(await adapter.chatStream(chat({}), ctx()))
    const ds = deltas(chunks)
    expect(ds.map((d) => d.reasoning ?? '').join('')).toBe(SIGNED.thinking)
    expect(ds.filter((d) => d.thinking_blocks).map((d) => d.thinking_blocks)).toEqual([[{ ...SIGNED, thinking: '' }], [REDACTED]])
    const firstTool = ds.findIndex((d) => d.tool_calls)
    expect(ds.findLastIndex((d) => d.reasoning || d.thinking_blocks)).toBeLessThan(firstTool)
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 165, completion_tokens: 90, total_tokens: 255, prompt_tokens_details: { cached_tokens: 100, cache_creation_tokens: 25 } })
  })

  it('reads the same from a stream split into 1-byte pieces', async () => {
    const events = [
      { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-think', content: [], stop_reason: null, usage: { input_tokens: 10, output_tokens: 1 } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Grüße: 2+2' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: ' is 4 ✓' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EuYBsig' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'part2==' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Four.' } },
      { type: 'content_block_stop', index: 1 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } },
      { type: 'message_stop' },
    ]
    fake.respond(() => ({ kind: 'raw-sse', text: events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(''), pieceSize: 1 }))
    const chunks = await collect(await adapter.chatStream(chat({ tools: undefined }), ctx()))
    const ds = deltas(chunks)
    expect(ds.map((d) => d.reasoning ?? '').join('')).toBe('Grüße: 2+2 is 4 ✓')
    expect(ds.filter((d) => d.thinking_blocks).map((d) => d.thinking_blocks)).toEqual([[{ type: 'thinking', thinking: '', signature: 'EuYBsigpart2==' }]])
    expect(ds.map((d) => d.content ?? '').join('')).toBe('Four.')
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop')
  })
})
