/**
 * The translators' output read by the official `openai` SDK: a loopback server answers POST /v1/responses
 * with toResponse (JSON) or toResponseEvents (SSE, `event: <type>` + `data: <json>`), from canned chat
 * answers, and the SDK's own accumulator (responses.stream().finalResponse()) must rebuild the Response.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ProxyError } from '../../../../src/core/errors.js'
import type { ChatCompletion, ChatCompletionChunk } from '../../../../src/core/openai-schema.js'
import { parseResponsesRequest, type ResponsesRequest } from '../../../../src/core/responses-schema.js'
import { responseFailedEvent } from '../../../../src/server/responses/errors.js'
import { toResponse } from '../../../../src/server/responses/response.js'
import { newResponseStream, toResponseEvents } from '../../../../src/server/responses/stream.js'
import { chunk, finishChunk, from, USAGE, usageChunk } from './fixtures.js'

type Answer = { chunks: ChatCompletionChunk[]; failWith?: ProxyError } | { completion: ChatCompletion }

let server: Server
let client: OpenAI
let answer: Answer
let received: ResponsesRequest | null = null

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = ''
    for await (const piece of req) body += piece
    if (req.method !== 'POST' || req.url !== '/v1/responses') return void res.writeHead(404).end()
    const request = parseResponsesRequest(JSON.parse(body))
    received = request
    if ('completion' in answer) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(toResponse(answer.completion, request)))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const state = newResponseStream(request)
    const { chunks, failWith } = answer
    async function* upstream() {
      yield* from(chunks)
      if (failWith) throw failWith
    }
    const write = (e: { type: string }) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
    try {
      for await (const event of toResponseEvents(upstream(), state)) write(event)
    } catch (err) {
      write(responseFailedEvent(err as ProxyError, state))
    }
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  client = new OpenAI({ baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, apiKey: 'x', maxRetries: 0 })
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))
beforeEach(() => {
  received = null
})

const weather = { type: 'function' as const, name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }, strict: false }

describe('the openai SDK reads the translated Responses API', () => {
  it('streams text: the SDK sees every delta and rebuilds the final Response with output_text and usage', async () => {
    answer = { chunks: [chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hello' }), chunk({ content: ', world.' }), finishChunk('stop'), usageChunk(USAGE)] }
    const stream = client.responses.stream({ model: 'my-claude', input: 'Say hello', instructions: 'Be brief.' })
    const deltas: string[] = []
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta))
    const final = await stream.finalResponse()
    expect(deltas).toEqual(['Hello', ', world.'])
    expect(final.status).toBe('completed')
    expect(final.model).toBe('my-claude')
    expect(final.instructions).toBe('Be brief.')
    expect(final.output_text).toBe('Hello, world.')
    expect(final.usage).toEqual({ input_tokens: 120, input_tokens_details: { cached_tokens: 100, cache_write_tokens: 8 }, output_tokens: 40, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 160 })
    expect(received?.stream).toBe(true)
  })

  it('streams reasoning and parallel function calls: final items carry the summary and the whole arguments', async () => {
    answer = {
      chunks: [
        chunk({ reasoning: 'Two cities, ' }),
        chunk({ reasoning: 'two calls.' }),
        chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig' }] }),
        chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"loc' } }] }),
        chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"location"' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: 'ation":"Paris"}' } }, { index: 1, function: { arguments: ':"Rome"}' } }] }),
        finishChunk('tool_calls'),
        usageChunk(USAGE),
      ],
    }
    const stream = client.responses.stream({ model: 'my-claude', input: 'Weather in Paris and Rome?', tools: [weather], reasoning: { summary: 'auto' }, store: false, include: ['reasoning.encrypted_content'] })
    const summary: string[] = []
    stream.on('response.reasoning_summary_text.delta', (e) => summary.push(e.delta))
    const final = await stream.finalResponse()
    expect(summary.join('')).toBe('Two cities, two calls.')
    expect(final.output.map((i) => i.type)).toEqual(['reasoning', 'function_call', 'function_call'])
    expect(final.output[0]).toMatchObject({ summary: [{ type: 'summary_text', text: 'Two cities, two calls.' }], encrypted_content: expect.stringMatching(/^proxy-thinking\.v1:/) })
    expect(final.output.slice(1)).toMatchObject([
      { type: 'function_call', call_id: 'call_a', name: 'get_weather', arguments: '{"location":"Paris"}', status: 'completed' },
      { type: 'function_call', call_id: 'call_b', name: 'get_weather', arguments: '{"location":"Rome"}', status: 'completed' },
    ])
    expect(final.usage?.total_tokens).toBe(160)
  })

  it('streams an answer cut at the length limit as an incomplete Response', async () => {
    answer = { chunks: [chunk({ content: 'Once upon a' }), finishChunk('length'), usageChunk(USAGE)] }
    const final = await client.responses.stream({ model: 'my-claude', input: 'Tell a story', max_output_tokens: 16 }).finalResponse()
    expect(final.status).toBe('incomplete')
    expect(final.incomplete_details).toEqual({ reason: 'max_output_tokens' })
    expect(final.output_text).toBe('Once upon a')
  })

  it('ends a stream that failed after the first byte with a failed Response the SDK reports', async () => {
    answer = { chunks: [chunk({ content: 'Hel' })], failWith: new ProxyError({ status: 502, type: 'upstream_error', code: 'upstream_stream_truncated', message: 'cut off' }) }
    const final = await client.responses.stream({ model: 'my-claude', input: 'Hi' }).finalResponse()
    expect(final.status).toBe('failed')
    expect(final.error).toEqual({ code: 'server_error', message: 'cut off' })
    expect(final.output_text).toBe('Hel')
  })

  it('reads a JSON answer through responses.create: text, a function call and usage', async () => {
    answer = {
      completion: {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: 'claude-upstream',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'Let me check.', refusal: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
            finish_reason: 'tool_calls',
            logprobs: null,
          },
        ],
        usage: USAGE,
      },
    }
    const res = await client.responses.create({ model: 'my-claude', input: 'Weather in Paris?', tools: [weather], tool_choice: 'auto' })
    expect(res.object).toBe('response')
    expect(res.id).toMatch(/^resp_/)
    expect(res.output_text).toBe('Let me check.')
    expect(res.output[1]).toMatchObject({ type: 'function_call', call_id: 'toolu_1', name: 'get_weather', arguments: '{"location":"Paris"}' })
    expect(res.usage?.input_tokens).toBe(120)
    expect(res.tools).toEqual([weather])
    expect(received?.stream).toBeUndefined()
  })
})
