/**
 * Reasoning both ways on the Ollama adapter: reasoning_effort as `think`, an earlier answer's reasoning sent
 * back as the assistant message's `thinking`, and Ollama's `thinking` read as `reasoning` (whole and
 * streamed, a byte at a time), over loopback against the fake Ollama server.
 */
import { Agent } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { chatRequestSchema, type ChatCompletionChunk, type ChatRequest } from '../../../src/core/openai-schema.js'
import { createOllamaAdapter } from '../../../src/providers/ollama/index.js'
import { readOllamaSettings, toOllamaChat } from '../../../src/providers/ollama/request.js'
import type { CallContext, ProviderAdapter } from '../../../src/providers/types.js'
import { startFakeOllama, type FakeOllama } from '../../fakes/ollama-upstream.js'
import { collect, proxyErrorOf } from '../../helpers/async.js'

const chat = (body: Record<string, unknown>) => chatRequestSchema.parse({ model: 'm', messages: [{ role: 'user', content: 'Think.' }], ...body }) as ChatRequest
const settings = readOllamaSettings({})
const CREATED = '2025-05-29T09:35:56.012345Z'
const line = (message: Record<string, unknown>, done = false, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'qwen3', created_at: CREATED, message: { role: 'assistant', content: '', ...message }, done, ...extra })

describe('ollama reasoning requests', () => {
  it.each([
    ['none', false],
    ['minimal', 'low'],
    ['low', 'low'],
    ['medium', 'medium'],
    ['high', 'high'],
  ])('sends reasoning_effort %s as think: %s', (effort, think) => {
    expect(toOllamaChat(chat({ reasoning_effort: effort }), 'qwen3', false, settings).think).toBe(think)
  })

  it('sends no think without an effort, and refuses an unknown one naming it', async () => {
    expect(toOllamaChat(chat({}), 'qwen3', false, settings)).not.toHaveProperty('think')
    expect(await proxyErrorOf(async () => toOllamaChat(chat({ reasoning_effort: 'max' }), 'qwen3', false, settings))).toMatchObject({ status: 400, param: 'reasoning_effort' })
  })

  it("sends an earlier answer's reasoning back as the assistant message's thinking, under any of its names", () => {
    const turn = (assistant: Record<string, unknown>) =>
      toOllamaChat(chat({ messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A', ...assistant }, { role: 'user', content: 'Q2' }] }), 'qwen3', false, settings).messages[1]
    expect(turn({ reasoning: 'first I thought' })).toEqual({ role: 'assistant', content: 'A', thinking: 'first I thought' })
    expect(turn({ reasoning_content: 'deepseek style' })).toEqual({ role: 'assistant', content: 'A', thinking: 'deepseek style' })
    expect(turn({ thinking_blocks: [{ type: 'thinking', thinking: 'from claude', signature: 's' }, { type: 'redacted_thinking', data: 'x' }] })).toEqual({ role: 'assistant', content: 'A', thinking: 'from claude' })
    expect(turn({})).toEqual({ role: 'assistant', content: 'A' })
  })
})

describe('ollama reasoning answers', () => {
  let fake: FakeOllama
  let agent: Agent
  let adapter: ProviderAdapter
  const ctx = (): CallContext => ({ apiKey: null, upstreamModel: 'qwen3', signal: AbortSignal.timeout(5000), requestId: 'r', timeouts: { firstByteMs: 5000 } })
  type Delta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: string }

  beforeAll(async () => {
    fake = await startFakeOllama()
    agent = new Agent()
    adapter = createOllamaAdapter({ name: 'ol', type: 'ollama', baseUrl: fake.baseUrl, settings: {} }, { dispatcher: agent })
  })
  afterAll(async () => {
    await agent.close()
    await fake.close()
  })
  beforeEach(() => fake.replay(null))

  it('reads thinking as the message reasoning, and sent think over the wire', async () => {
    fake.replay(line({ content: 'Four.', thinking: '2+2 is 4.' }, true, { done_reason: 'stop', prompt_eval_count: 9, eval_count: 20 }), { contentType: 'application/json' })
    const res = await adapter.chat(chat({ reasoning_effort: 'medium', messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A', reasoning: 'earlier' }, { role: 'user', content: '2+2?' }] }), ctx())
    expect(res.choices[0]!.message).toMatchObject({ content: 'Four.', reasoning: '2+2 is 4.' })
    expect(res.usage).toEqual({ prompt_tokens: 9, completion_tokens: 20, total_tokens: 29 })
    const sent = fake.requests.at(-1)!.body
    expect(sent.think).toBe('medium')
    expect(sent.messages[1]).toEqual({ role: 'assistant', content: 'A', thinking: 'earlier' })
  })

  it.each([
    ['whole', undefined],
    ['a byte at a time', 1],
  ])('streams thinking lines as reasoning deltas before the content (%s)', async (_label, chunkSize) => {
    const body = [
      line({ thinking: 'Okay, ' }),
      line({ thinking: 'the user wants 2+2 → 4.' }),
      line({ content: 'Four' }),
      line({ content: '.' }),
      line({}, true, { done_reason: 'stop', prompt_eval_count: 9, eval_count: 20 }),
    ].join('\n')
    fake.replay(body, { chunkSize })
    const chunks = await collect(await adapter.chatStream(chat({ reasoning_effort: 'high', stream: true }), ctx()))
    const ds = chunks.map((c) => c.choices[0]?.delta as Delta | undefined).filter((d): d is Delta => d !== undefined)
    expect(ds.map((d) => d.reasoning ?? '').join('')).toBe('Okay, the user wants 2+2 → 4.')
    expect(ds.map((d) => d.content ?? '').join('')).toBe('Four.')
    expect(ds.findLastIndex((d) => d.reasoning)).toBeLessThan(ds.findIndex((d) => d.content))
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 9, completion_tokens: 20, total_tokens: 29 })
  })
})
