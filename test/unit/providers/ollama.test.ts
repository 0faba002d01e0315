import { Agent } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ProxyError } from '../../../src/core/errors.js'
import type { ChatCompletionChunk, ChatRequest, Completion } from '../../../src/core/openai-schema.js'
import { createOllamaAdapter, ollamaRoot } from '../../../src/providers/ollama/index.js'
import { droppedParams, readOllamaSettings, toOllamaChat } from '../../../src/providers/ollama/request.js'
import type { CallContext, ProviderAdapter } from '../../../src/providers/types.js'
import { startFakeOllama, type FakeOllama } from '../../fakes/ollama-upstream.js'
import { readTestdata, skipWithoutTestdata } from '../../helpers/testdata.js'

const ctx = (over: Partial<CallContext> = {}): CallContext => ({
  apiKey: null,
  upstreamModel: 'llama3.2',
  signal: AbortSignal.timeout(5000),
  requestId: 'req_test',
  timeouts: { firstByteMs: 5000 },
  ...over,
})

const chat = (over: Partial<ChatRequest> = {}): ChatRequest => ({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...over }) as ChatRequest

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const c of stream) out.push(c)
  return out
}

const textOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')

describe('ollama adapter', () => {
  let fake: FakeOllama
  let agent: Agent
  let adapter: ProviderAdapter

  beforeAll(async () => {
    fake = await startFakeOllama()
    agent = new Agent()
    adapter = createOllamaAdapter({ name: 'ol', type: 'ollama', baseUrl: fake.baseUrl, settings: { num_ctx: 8192, options: { top_k: 20 }, keep_alive: '10m' } }, { dispatcher: agent })
  })
  afterAll(async () => {
    await agent.close()
    await fake.close()
  })
  beforeEach(() => {
    fake.replay(null)
    fake.models = null
  })

  describe('replays the recorded transcripts verbatim', () => {
    const skip = skipWithoutTestdata('the ollama transcript replays')

    it.skipIf(skip).each([
      ['in one piece', undefined],
      ['in 7-byte pieces', 7],
      ['a byte at a time', 1],
    ])('chat_stream.ndjson %s: exact text, finish_reason and usage', async (_label, chunkSize) => {
      const bytes = readTestdata('ollama/chat_stream.ndjson')
      expect(bytes.endsWith('\n')).toBe(false)
      fake.replay(bytes, { chunkSize })
      const chunks = await collect(await adapter.chatStream(chat({ stream: true }), ctx({ upstreamModel: 'phi3' })))
      expect(textOf(chunks)).toBe('This is test completion response')
      expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant')
      expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id)).toBe(true)
      expect(chunks[0]!.created).toBe(Math.floor(Date.parse('2024-07-02T11:45:16.216898458Z') / 1000))
      expect(chunks[0]!.model).toBe('phi3')
      const finishes = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean)
      expect(finishes).toEqual(['stop'])
      const last = chunks.at(-1)!
      expect(last.choices).toEqual([])
      expect(last.usage).toEqual({ prompt_tokens: 10, completion_tokens: 239, total_tokens: 249 })
      expect(chunks.filter((c) => c.usage)).toHaveLength(1)
      // the request said stream:true explicitly
      expect(fake.requests.at(-1)!.body.stream).toBe(true)
    })

    it.skipIf(skip)('chat_response.json: text, finish_reason and usage', async () => {
      fake.replay(readTestdata('ollama/chat_response.json'), { contentType: 'application/json; charset=utf-8' })
      const res = await adapter.chat(chat(), ctx())
      expect(res.object).toBe('chat.completion')
      expect(res.model).toBe('llama3.2')
      expect(res.created).toBe(Math.floor(Date.parse('2024-10-16T11:08:38.60342187Z') / 1000))
      expect(res.choices[0]).toMatchObject({ index: 0, message: { role: 'assistant', content: 'This is test completion response' }, finish_reason: 'stop' })
      expect(res.usage).toEqual({ prompt_tokens: 38, completion_tokens: 45, total_tokens: 83 })
      expect(fake.requests.at(-1)!.body.stream).toBe(false)
    })

    it.skipIf(skip)('chat_tool_call_response.json: arguments as a JSON string, a synthesized id, finish_reason tool_calls', async () => {
      fake.replay(readTestdata('ollama/chat_tool_call_response.json'), { contentType: 'application/json; charset=utf-8' })
      const res = await adapter.chat(chat({ tools: [{ type: 'function', function: { name: 'TestPlugin_TestFunction', parameters: { type: 'object' } } }] }), ctx())
      const choice = res.choices[0]!
      expect(choice.finish_reason).toBe('tool_calls')
      expect(choice.message.content).toBeNull()
      expect(choice.message.tool_calls).toHaveLength(1)
      const call = choice.message.tool_calls![0]!
      expect(call.id).toMatch(/^call_[A-Za-z0-9]+$/)
      expect(call.type).toBe('function')
      expect(call.function).toEqual({ name: 'TestPlugin_TestFunction', arguments: '{"testInput":"fake-text"}' })
      expect(res.usage).toEqual({ prompt_tokens: 152, completion_tokens: 22, total_tokens: 174 })
    })
  })

  it('numbers streamed tool calls across lines and gives each its own id', async () => {
    const line = (calls: unknown[]) => JSON.stringify({ model: 'qwen3', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: '', tool_calls: calls }, done: false })
    fake.replay(
      [
        JSON.stringify({ model: 'qwen3', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: 'Checking.' }, done: false }),
        line([{ function: { name: 'get_weather', arguments: { location: 'Paris' } } }]),
        line([{ function: { name: 'get_time', arguments: {} } }]),
        JSON.stringify({ model: 'qwen3', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: '' }, done_reason: 'stop', done: true, prompt_eval_count: 5, eval_count: 7 }),
      ].join('\n') + '\n',
    )
    const chunks = await collect(await adapter.chatStream(chat({ stream: true }), ctx()))
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    expect(calls.map((c) => [c.index, c.type, c.function?.name, c.function?.arguments])).toEqual([
      [0, 'function', 'get_weather', '{"location":"Paris"}'],
      [1, 'function', 'get_time', '{}'],
    ])
    expect(new Set(calls.map((c) => c.id)).size).toBe(2)
    expect(calls.every((c) => /^call_/.test(c.id!))).toBe(true)
    expect(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean)).toEqual(['tool_calls'])
    expect(textOf(chunks)).toBe('Checking.')
  })

  it('maps done_reason length to finish_reason length', async () => {
    fake.replay(JSON.stringify({ model: 'x', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: 'abc' }, done_reason: 'length', done: true, prompt_eval_count: 1, eval_count: 3 }), { contentType: 'application/json' })
    expect((await adapter.chat(chat({ max_tokens: 3 }), ctx())).choices[0]!.finish_reason).toBe('length')
  })

  it('raises a mid-stream {"error":…} line as an error after the text before it', async () => {
    fake.play({ kind: 'stream_error', text: 'partial answer', message: 'llama runner process has terminated' })
    const stream = await adapter.chatStream(chat({ stream: true }), ctx())
    const seen: string[] = []
    const consume = async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '')
    }
    await expect(consume()).rejects.toMatchObject({ code: 'upstream_stream_error', message: expect.stringContaining('llama runner process has terminated') })
    expect(seen.join('')).toBe('partial answer')
  })

  it('treats a stream that ends before done as an error, not a silent truncation', async () => {
    fake.replay(JSON.stringify({ model: 'x', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: 'Hel' }, done: false }) + '\n')
    await expect(collect(await adapter.chatStream(chat({ stream: true }), ctx()))).rejects.toMatchObject({ code: 'upstream_stream_truncated' })
  })

  it('tells the operator to ollama pull a model the server does not have', async () => {
    fake.models = ['llama3.2:latest']
    const call = adapter.chat(chat(), ctx({ upstreamModel: 'qwen3:8b' }))
    await expect(call).rejects.toBeInstanceOf(ProxyError)
    await expect(call).rejects.toMatchObject({ code: 'upstream_not_found', message: expect.stringContaining("ollama pull qwen3:8b") })
  })

  it('keeps the base-URL hint for a 404 that is not about a model', async () => {
    const wrong = createOllamaAdapter({ name: 'ol', type: 'ollama', baseUrl: `${fake.baseUrl}/nothing-here`, settings: {} }, { dispatcher: agent })
    await expect(wrong.chat(chat(), ctx())).rejects.toMatchObject({ code: 'upstream_not_found', message: expect.stringContaining('base URL') })
  })

  it('sends OpenAI parameters as options, provider settings underneath, and stream explicitly', async () => {
    fake.play({ kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } })
    await adapter.chat(chat({ temperature: 0.2, top_p: 0.9, seed: 7, stop: 'END', max_tokens: 50, max_completion_tokens: 40, frequency_penalty: 0.5, presence_penalty: -0.5 }), ctx())
    const body = fake.requests.at(-1)!.body
    expect(fake.requests.at(-1)!.path).toBe('/api/chat')
    expect(body.stream).toBe(false)
    expect(body.keep_alive).toBe('10m')
    expect(body.options).toEqual({ num_ctx: 8192, top_k: 20, temperature: 0.2, top_p: 0.9, seed: 7, stop: ['END'], num_predict: 40, frequency_penalty: 0.5, presence_penalty: -0.5 })
  })

  it('embeds a string or an array through /api/embed, as floats or base64', async () => {
    const one = await adapter.embeddings!({ model: 'm', input: 'hello' }, ctx({ upstreamModel: 'all-minilm' }))
    expect(fake.requests.at(-1)!).toMatchObject({ path: '/api/embed', body: { model: 'all-minilm', input: 'hello' } })
    expect(one).toMatchObject({ object: 'list', model: 'all-minilm', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }], usage: { prompt_tokens: 4, total_tokens: 4 } })
    const two = await adapter.embeddings!({ model: 'm', input: ['a', 'b'], encoding_format: 'base64' }, ctx())
    expect(two.data).toHaveLength(2)
    const decoded = new Float32Array(Uint8Array.from(Buffer.from(two.data[1]!.embedding as string, 'base64')).buffer)
    expect([...decoded].map((v) => Number(v.toFixed(3)))).toEqual([0.1, 0.2, 0.3])
    await expect(adapter.embeddings!({ model: 'm', input: [1, 2, 3] }, ctx())).rejects.toMatchObject({ status: 400, param: 'input' })
  })

  it('lists models from /api/tags', async () => {
    fake.models = ['llama3.2:latest', 'qwen3:8b']
    expect(await adapter.listModels!(ctx())).toEqual(['llama3.2:latest', 'qwen3:8b'])
    expect(fake.requests.at(-1)!).toMatchObject({ method: 'GET', path: '/api/tags' })
  })

  it('serves legacy completions through /api/generate, streamed or not, with echo', async () => {
    fake.play({ kind: 'text', text: 'world, again', usage: { prompt: 3, completion: 4 } })
    const res = await adapter.completion!({ model: 'm', prompt: 'hello ', echo: true, max_tokens: 5, suffix: '!' }, ctx())
    expect(fake.requests.at(-1)!).toMatchObject({ path: '/api/generate', body: { prompt: 'hello ', suffix: '!', stream: false, options: { num_predict: 5 } } })
    expect(res).toMatchObject({ object: 'text_completion', choices: [{ text: 'hello world, again', finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } })
    const chunks: Completion[] = await collect(await adapter.completionStream!({ model: 'm', prompt: 'hello ', stream: true }, ctx()))
    expect(chunks.map((c) => c.choices[0]?.text ?? '').join('')).toBe('world, again')
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
    expect(fake.requests.at(-1)!.body.stream).toBe(true)
  })

  it('reports the OpenAI parameters it had to leave out', async () => {
    fake.play({ kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } })
    const warned: string[] = []
    await adapter.chat(chat({ logprobs: true, logit_bias: { '1': 2 }, user: 'u1' } as Partial<ChatRequest>), ctx({ warn: (p) => warned.push(p) }))
    expect(warned).toEqual(['logprobs', 'logit_bias', 'user'])
  })
})

describe('ollama request mapping', () => {
  const settings = readOllamaSettings({})

  it('turns data-URL images into bare base64 and joins text parts', () => {
    const body = toOllamaChat(
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'text', text: 'Be brief.' },
            ],
          },
        ],
      }),
      'llava',
      false,
      settings,
    )
    expect(body.messages).toEqual([{ role: 'user', content: 'What is this?\nBe brief.', images: ['iVBORw0KGgo='] }])
  })

  it('refuses image URLs it would have to fetch, naming the part', () => {
    const call = () => toOllamaChat(chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }), 'llava', false, settings)
    expect(call).toThrow(expect.objectContaining({ status: 400, param: 'messages[0].content[0].image_url' }))
  })

  it('sends tool calls with object arguments and names tool results', () => {
    const body = toOllamaChat(
      chat({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_a', content: '{"sky":"clear"}' },
        ],
      }),
      'qwen3',
      true,
      settings,
    )
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { location: 'Paris' } } }] },
      { role: 'tool', content: '{"sky":"clear"}', tool_name: 'get_weather' },
    ])
  })

  it("passes function tools as they are (Ollama's shape is OpenAI's) and honours tool_choice where it can", () => {
    const tools = [
      { type: 'function' as const, function: { name: 'a', description: 'A', parameters: { type: 'object' }, strict: true } },
      { type: 'function' as const, function: { name: 'b', parameters: { type: 'object' } } },
    ]
    expect(toOllamaChat(chat({ tools }), 'x', false, settings).tools).toEqual(tools)
    expect(toOllamaChat(chat({ tools, tool_choice: 'none' }), 'x', false, settings).tools).toBeUndefined()
    expect(toOllamaChat(chat({ tools, tool_choice: { type: 'function', function: { name: 'b' } } }), 'x', false, settings).tools?.map((t) => t.function.name)).toEqual(['b'])
    expect(droppedParams(chat({ tools, tool_choice: 'required' }), 'chat')).toEqual(['tool_choice'])
  })

  it('maps response_format to format and reasoning_effort to think', () => {
    expect(toOllamaChat(chat({ response_format: { type: 'json_object' } }), 'x', false, settings).format).toBe('json')
    const schema = { type: 'object', properties: { age: { type: 'integer' } } }
    expect(toOllamaChat(chat({ response_format: { type: 'json_schema', json_schema: { name: 's', schema } } }), 'x', false, settings).format).toEqual(schema)
    expect(toOllamaChat(chat({ reasoning_effort: 'none' } as Partial<ChatRequest>), 'x', false, settings).think).toBe(false)
    expect(toOllamaChat(chat({ reasoning_effort: 'high' } as Partial<ChatRequest>), 'x', false, settings).think).toBe('high')
  })

  it('refuses n > 1 instead of answering with one choice', () => {
    expect(() => toOllamaChat(chat({ n: 2 }), 'x', false, settings)).toThrow(expect.objectContaining({ status: 400, param: 'n' }))
  })

  it('finds the server root in the base URLs people paste', () => {
    expect(ollamaRoot(null)).toBe('http://localhost:11434')
    expect(ollamaRoot('http://gpu:11434/')).toBe('http://gpu:11434')
    expect(ollamaRoot('http://gpu:11434/api')).toBe('http://gpu:11434')
    expect(ollamaRoot('http://gpu:11434/v1/')).toBe('http://gpu:11434')
  })
})
