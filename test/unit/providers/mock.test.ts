/**
 * The mock provider's tool calls and thinking: which tool it calls and with what arguments, whole and
 * streamed (arguments in pieces), reasoning and its signed block before the answer, usage always.
 */
import { describe, expect, it } from 'vitest'
import { chatRequestSchema, type ChatCompletionChunk, type ChatRequest } from '../../../src/core/openai-schema.js'
import { valueFor } from '../../../src/providers/mock-answer.js'
import { createMockAdapter } from '../../../src/providers/mock.js'
import type { CallContext } from '../../../src/providers/types.js'
import { collect } from '../../helpers/async.js'

const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1 }, verbose: { type: 'boolean' } },
      required: ['location', 'unit', 'days'],
    },
  },
}
const SEARCH = { type: 'function' as const, function: { name: 'search', parameters: { type: 'object', properties: { query: { type: 'string' }, filters: { type: 'object', properties: { lang: { const: 'en' } }, required: ['lang'] } }, required: ['query', 'filters'] } } }

const ctx: CallContext = { apiKey: null, upstreamModel: 'mock-1', signal: AbortSignal.timeout(5000), requestId: 'r', timeouts: { firstByteMs: 5000 } }
const mock = (settings: Record<string, unknown> = {}) => createMockAdapter({ name: 'mock', type: 'mock', baseUrl: null, settings: { tool_calls: true, ...settings } })
const chat = (body: Record<string, unknown>) => chatRequestSchema.parse({ model: 'm', messages: [{ role: 'user', content: 'Weather in Paris?' }], ...body }) as ChatRequest
type Delta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: string; thinking_blocks?: unknown[] }
const deltas = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta as Delta | undefined).filter((d): d is Delta => d !== undefined)

describe('mock tool calls', () => {
  it('calls the first tool with arguments built from its required properties, the same way every time', async () => {
    const a = await mock().chat(chat({ tools: [WEATHER, SEARCH] }), ctx)
    const b = await mock().chat(chat({ tools: [WEATHER, SEARCH] }), ctx)
    const call = a.choices[0]!.message.tool_calls![0]!
    expect(a.choices[0]!.finish_reason).toBe('tool_calls')
    expect(a.choices[0]!.message.content).toBeNull()
    expect(call).toEqual({ id: expect.stringMatching(/^call_[0-9a-f]{24}$/), type: 'function', function: { name: 'get_weather', arguments: '{"location":"mock location","unit":"celsius","days":1}' } })
    expect(b.choices[0]!.message.tool_calls).toEqual([call])
    expect(a.usage).toMatchObject({ completion_tokens: expect.any(Number), total_tokens: expect.any(Number) })
  })

  it('calls the tool tool_choice names, and none for tool_choice none', async () => {
    const named = await mock().chat(chat({ tools: [WEATHER, SEARCH], tool_choice: { type: 'function', function: { name: 'search' } } }), ctx)
    expect(named.choices[0]!.message.tool_calls![0]!.function).toEqual({ name: 'search', arguments: '{"query":"mock query","filters":{"lang":"en"}}' })
    const none = await mock().chat(chat({ tools: [WEATHER], tool_choice: 'none' }), ctx)
    expect(none.choices[0]!.message).toMatchObject({ content: expect.stringContaining('Weather in Paris?') })
    expect(none.choices[0]!.message.tool_calls).toBeUndefined()
  })

  it('answers a tool result with text (so an agent loop ends), unless a tool is required', async () => {
    const loop = [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'call_1', content: 'Sunny' }]
    const done = await mock().chat(chat({ tools: [WEATHER], messages: loop }), ctx)
    expect(done.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: expect.stringContaining('Weather?') } })
    const again = await mock().chat(chat({ tools: [WEATHER], tool_choice: 'required', messages: loop }), ctx)
    expect(again.choices[0]!.finish_reason).toBe('tool_calls')
  })

  it('answers in text when its settings do not ask for tool calls', async () => {
    const res = await createMockAdapter({ name: 'mock', type: 'mock', baseUrl: null, settings: {} }).chat(chat({ tools: [WEATHER] }), ctx)
    expect(res.choices[0]!.finish_reason).toBe('stop')
  })

  it('streams the call with its id and name first, then the arguments in several pieces', async () => {
    const chunks = await collect(await mock({ chunks: 4 }).chatStream(chat({ tools: [WEATHER], stream: true }), ctx))
    const calls = deltas(chunks).flatMap((d) => d.tool_calls ?? [])
    expect(calls[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } })
    expect(calls.length).toBeGreaterThanOrEqual(4)
    expect(calls.every((c) => c.index === 0)).toBe(true)
    expect(calls.map((c) => c.function?.arguments ?? '').join('')).toBe('{"location":"mock location","unit":"celsius","days":1}')
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('tool_calls')
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } })
  })

  it('builds values for every schema shape deterministically', () => {
    expect(valueFor({ type: ['null', 'number'], minimum: 5 }, 'n')).toBe(5)
    expect(valueFor({ type: 'array', items: { type: 'string' }, minItems: 1 }, 'tags')).toEqual(['mock tags'])
    expect(valueFor({ type: 'array', items: { type: 'string' } }, 'tags')).toEqual([])
    expect(valueFor({ anyOf: [{ type: 'boolean' }, { type: 'string' }] }, 'x')).toBe(true)
    expect(valueFor({ type: 'object' }, 'o')).toEqual({})
  })
})

describe('mock thinking', () => {
  it('answers with reasoning and a signed thinking block when asked, and counts reasoning tokens', async () => {
    const res = await mock().chat(chat({ reasoning_effort: 'low' }), ctx)
    const message = res.choices[0]!.message
    expect(message.reasoning).toBe('Mock reasoning (low): the user said "Weather in Paris?", so I will answer in text.')
    expect(message.thinking_blocks).toEqual([{ type: 'thinking', thinking: message.reasoning, signature: expect.stringMatching(/^mock-signature-[A-Za-z0-9+/]+=*$/) }])
    expect((await mock().chat(chat({ reasoning_effort: 'low' }), ctx)).choices[0]!.message.thinking_blocks).toEqual(message.thinking_blocks)
    expect(res.usage!.completion_tokens_details).toEqual({ reasoning_tokens: Math.ceil(String(message.reasoning).length / 4) })
    const none = await mock().chat(chat({ reasoning_effort: 'none' }), ctx)
    expect(none.choices[0]!.message.reasoning).toBeUndefined()
    expect(none.usage!.completion_tokens_details).toBeUndefined()
  })

  it('streams the reasoning first, then the signed block, then the tool call', async () => {
    const chunks = await collect(await mock({ chunks: 3 }).chatStream(chat({ reasoning_effort: 'high', tools: [WEATHER], stream: true }), ctx))
    const ds = deltas(chunks)
    const reasoning = ds.map((d) => d.reasoning ?? '').join('')
    expect(reasoning).toBe('Mock reasoning (high): the user said "Weather in Paris?", so I will call get_weather.')
    expect(ds.filter((d) => d.reasoning).length).toBe(3)
    const blockAt = ds.findIndex((d) => d.thinking_blocks)
    expect(ds[blockAt]!.thinking_blocks).toEqual([{ type: 'thinking', thinking: '', signature: expect.stringMatching(/^mock-signature-/) }])
    expect(ds.findLastIndex((d) => d.reasoning)).toBeLessThan(blockAt)
    expect(blockAt).toBeLessThan(ds.findIndex((d) => d.tool_calls))
    expect(chunks.at(-1)!.usage!.completion_tokens_details).toEqual({ reasoning_tokens: Math.ceil(reasoning.length / 4) })
  })
})
