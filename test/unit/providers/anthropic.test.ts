/**
 * Real Anthropic transcripts (shared/testdata/anthropic, recorded by Anthropic's own SDK tests) replayed
 * byte for byte through the adapter, plus the stream edge cases the conformance fake does not produce.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { Agent } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatCompletionChunk, Completion, ToolCall } from '../../../src/core/openai-schema.js'
import { ProxyError } from '../../../src/core/errors.js'
import { createAnthropicAdapter } from '../../../src/providers/anthropic/index.js'
import type { CallContext, ProviderAdapter } from '../../../src/providers/types.js'
import { skipWithoutTestdata, testdataDir } from '../../helpers/testdata.js'

interface Served {
  contentType: string
  /** the body, written in pieces of this many bytes (to prove events split across reads still parse) */
  bytes: Buffer
  pieceSize?: number
}

interface Seen {
  path: string
  headers: IncomingHttpHeaders
  body: any
}

let server: Server
let serve: Served = { contentType: 'application/json', bytes: Buffer.from('{}') }
const seen: Seen[] = []
const dispatcher = new Agent()
let adapter: ProviderAdapter

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let raw = ''
    for await (const c of req) raw += c
    seen.push({ path: req.url!, headers: req.headers, body: raw ? JSON.parse(raw) : undefined })
    res.writeHead(200, { 'content-type': serve.contentType })
    const size = serve.pieceSize ?? serve.bytes.length
    for (let i = 0; i < serve.bytes.length; i += size) {
      res.write(serve.bytes.subarray(i, i + size))
      await new Promise((r) => setImmediate(r))
    }
    res.end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  adapter = createAnthropicAdapter({ name: 'claude', type: 'anthropic', baseUrl: `http://127.0.0.1:${port}`, settings: {} }, { dispatcher })
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  await dispatcher.close()
})

const ctx = (): CallContext => ({
  apiKey: 'sk-ant-test',
  upstreamModel: 'claude-test',
  signal: new AbortController().signal,
  requestId: 'req_test',
  timeouts: { firstByteMs: 5000 },
})

const sse = (events: Array<Record<string, unknown>>) => Buffer.from(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(''))
const chat = { model: 'm', messages: [{ role: 'user' as const, content: 'Weather in Paris?' }] }

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of stream) out.push(item)
  return out
}

/** Rebuilds a message from chunks the way OpenAI's SDK does: text appended, tool calls by `index`. */
function accumulate(chunks: ChatCompletionChunk[]) {
  let text = ''
  let finish: string | null = null
  const calls: ToolCall[] = []
  for (const chunk of chunks) {
    const choice = chunk.choices[0]
    if (!choice) continue
    text += choice.delta.content ?? ''
    finish = choice.finish_reason ?? finish
    for (const d of choice.delta.tool_calls ?? []) {
      const call = (calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } })
      if (d.id) call.id = d.id
      if (d.function?.name) call.function.name += d.function.name
      call.function.arguments += d.function?.arguments ?? ''
    }
  }
  return { text, finish, calls, usage: chunks.at(-1)?.usage }
}

const skipTranscripts = skipWithoutTestdata('the anthropic transcript replays')

describe.skipIf(skipTranscripts)('anthropic transcripts', () => {
  const file = (name: string) => readFileSync(path.join(testdataDir ?? '', 'anthropic', name))

  it('replays stream.txt (text then a tool call, no trailing newline) into exact chunks', async () => {
    const bytes = file('stream.txt')
    expect(bytes.at(-1)).not.toBe(0x0a)
    serve = { contentType: 'text/event-stream', bytes }
    const chunks = await collect(await adapter.chatStream(chat, ctx()))
    const { text, finish, calls, usage } = accumulate(chunks)
    expect(text).toBe("I'll check the current weather in Paris for you.")
    expect(calls).toHaveLength(1)
    expect(calls[0]!).toMatchObject({ id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', type: 'function', function: { name: 'get_weather' } })
    expect(JSON.parse(calls[0]!.function.arguments)).toEqual({ location: 'Paris' })
    expect(finish).toBe('tool_calls')
    expect(usage).toEqual({ prompt_tokens: 377, completion_tokens: 65, total_tokens: 442, prompt_tokens_details: { cached_tokens: 0 } })

    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' })
    const toolDeltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    expect(toolDeltas[0]).toEqual({ index: 0, id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', type: 'function', function: { name: 'get_weather', arguments: '' } })
    expect(toolDeltas.slice(1).map((d) => d.function?.arguments)).toEqual(['{"locati', 'on": "P', 'ar', 'is"}'])
    expect(toolDeltas.every((d) => d.index === 0)).toBe(true)
    expect(chunks.at(-2)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'tool_calls' })
    expect(chunks.at(-1)!.choices).toEqual([])
    for (const c of chunks) expect(c).toMatchObject({ id: 'chatcmpl-msg_019Q1hrJbZG26Fb9BQhrkHEr', object: 'chat.completion.chunk', model: 'claude-sonnet-4-20250514' })

    const req = seen.at(-1)!
    expect(req.path).toBe('/v1/messages')
    expect(req.headers['x-api-key']).toBe('sk-ant-test')
    expect(req.headers['anthropic-version']).toBe('2023-06-01')
    expect(req.body).toEqual({ model: 'claude-test', max_tokens: 4096, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }] })
  })

  it('replays stream.txt cut into 7-byte pieces to the same result', async () => {
    serve = { contentType: 'text/event-stream', bytes: file('stream.txt'), pieceSize: 7 }
    const { text, calls, finish } = accumulate(await collect(await adapter.chatStream(chat, ctx())))
    expect(text).toBe("I'll check the current weather in Paris for you.")
    expect(JSON.parse(calls[0]!.function.arguments)).toEqual({ location: 'Paris' })
    expect(finish).toBe('tool_calls')
  })

  it('replays stream_basic.txt into "Hello there!" with finish_reason stop', async () => {
    serve = { contentType: 'text/event-stream', bytes: file('stream_basic.txt') }
    const chunks = await collect(await adapter.chatStream(chat, ctx()))
    const { text, finish, calls, usage } = accumulate(chunks)
    expect(text).toBe('Hello there!')
    expect(finish).toBe('stop')
    expect(calls).toEqual([])
    expect(usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 })
  })

  it('replays stream_basic.txt as a legacy completion stream', async () => {
    serve = { contentType: 'text/event-stream', bytes: file('stream_basic.txt') }
    const chunks: Completion[] = await collect(await adapter.completionStream!({ model: 'm', prompt: 'Hi' }, ctx()))
    expect(chunks.map((c) => c.choices[0]?.text ?? '').join('')).toBe('Hello there!')
    expect(chunks.at(-2)!.choices[0]).toMatchObject({ text: '', finish_reason: 'stop' })
    expect(chunks.at(-1)).toMatchObject({ object: 'text_completion', id: 'cmpl-msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK', choices: [], usage: { prompt_tokens: 11, completion_tokens: 6 } })
  })

  it('maps message.json to text, tool_calls, finish_reason and usage', async () => {
    serve = { contentType: 'application/json', bytes: file('message.json') }
    const res = await adapter.chat(chat, ctx())
    expect(res).toMatchObject({ id: 'chatcmpl-msg_01UBZt9MX63Tk3v1gKvgxk3A', object: 'chat.completion', model: 'claude-haiku-4-5-20251001' })
    expect(res).not.toHaveProperty('system_fingerprint')
    expect(Math.abs(res.created - Date.now() / 1000)).toBeLessThan(5)
    const choice = res.choices[0]!
    expect(choice.finish_reason).toBe('tool_calls')
    expect(choice.message.content).toBe("I'll get the weather for each of those cities. Let me start by checking San Francisco.")
    expect(choice.message.tool_calls).toEqual([{ id: 'toolu_01LRanfq6DmHn1yDTB4d1SAh', type: 'function', function: { name: 'get_weather', arguments: expect.any(String) } }])
    expect(JSON.parse(choice.message.tool_calls![0]!.function.arguments)).toEqual({ location: 'San Francisco, CA', units: 'f' })
    expect(res.usage).toEqual({ prompt_tokens: 701, completion_tokens: 93, total_tokens: 794, prompt_tokens_details: { cached_tokens: 0 } })
    expect(seen.at(-1)!.body.stream).toBeUndefined()
  })
})

describe('anthropic streams beyond the transcripts', () => {
  const start = { type: 'message_start', message: { id: 'msg_1', model: 'claude-x', usage: { input_tokens: 5, cache_read_input_tokens: 20, output_tokens: 1 } } }

  it('numbers tool calls 0, 1, … in the order their blocks start, whatever Anthropic’s block index', async () => {
    serve = {
      contentType: 'text/event-stream',
      bytes: sse([
        start,
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Two lookups.' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} } },
        { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"location":' } },
        { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } },
        { type: 'content_block_stop', index: 1 },
        { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_b', name: 'get_time', input: {} } },
        { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"tz":"CET"}' } },
        { type: 'content_block_stop', index: 2 },
        { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 40 } },
        { type: 'message_stop' },
      ]),
    }
    const { text, calls, finish, usage } = accumulate(await collect(await adapter.chatStream(chat, ctx())))
    expect(text).toBe('Two lookups.')
    expect(calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)])).toEqual([
      ['toolu_a', 'get_weather', { location: 'Paris' }],
      ['toolu_b', 'get_time', { tz: 'CET' }],
    ])
    expect(finish).toBe('tool_calls')
    expect(usage).toEqual({ prompt_tokens: 25, completion_tokens: 40, total_tokens: 65, prompt_tokens_details: { cached_tokens: 20 } })
  })

  it('gives a call to a tool without parameters the arguments {}, which Anthropic streams as an empty partial_json', async () => {
    serve = {
      contentType: 'text/event-stream',
      bytes: sse([
        start,
        { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_n', name: 'list_cities', input: {} } },
        { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } },
        { type: 'message_stop' },
      ]),
    }
    const { calls } = accumulate(await collect(await adapter.chatStream(chat, ctx())))
    expect(calls).toEqual([{ id: 'toolu_n', type: 'function', function: { name: 'list_cities', arguments: '{}' } }])
  })

  it('throws a retryable upstream_overloaded ProxyError on an overloaded error event mid-stream', async () => {
    serve = {
      contentType: 'text/event-stream',
      bytes: sse([
        start,
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'partial' } },
        { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
      ]),
    }
    const got: string[] = []
    const consume = async () => {
      for await (const c of await adapter.chatStream(chat, ctx())) got.push(c.choices[0]?.delta.content ?? '')
    }
    const err = await consume().then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ProxyError)
    expect(err).toMatchObject({ status: 502, code: 'upstream_overloaded', retryable: true, message: expect.stringContaining('Overloaded') })
    expect(got.join('')).toBe('partial')
  })

  it('refuses to end quietly when the stream stops before message_stop', async () => {
    serve = { contentType: 'text/event-stream', bytes: sse([start, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'cut' } }]) }
    await expect(collect(await adapter.chatStream(chat, ctx()))).rejects.toMatchObject({ code: 'upstream_stream_truncated' })
  })

  it('maps a refusal stop_reason to content_filter', async () => {
    serve = { contentType: 'application/json', bytes: Buffer.from(JSON.stringify({ id: 'msg_r', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: 'refusal', usage: { input_tokens: 3, output_tokens: 0 } })) }
    const res = await adapter.chat(chat, ctx())
    expect(res.choices[0]).toMatchObject({ finish_reason: 'content_filter', message: { content: null } })
  })

  it('reports dropped parameters through ctx.warn', async () => {
    serve = { contentType: 'application/json', bytes: file0() }
    const dropped: string[] = []
    await adapter.chat({ ...chat, seed: 3, frequency_penalty: 1 }, { ...ctx(), warn: (p) => dropped.push(p) })
    expect(dropped).toEqual(['frequency_penalty', 'seed'])
  })
})

function file0(): Buffer {
  return Buffer.from(JSON.stringify({ id: 'msg_0', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } }))
}
