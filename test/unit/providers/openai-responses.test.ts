/**
 * Native Responses calls on the openai and azure adapters against the fake OpenAI upstream over loopback:
 * bodies pass untouched but for `model` (unknown fields and encrypted reasoning included), answers and
 * events keep the upstream's bytes, stored responses can be read, listed and deleted, failures map.
 */
import { Agent } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { collect, proxyErrorOf } from '../../helpers/async.js'
import { rawJsonOf } from '../../../src/core/raw-json.js'
import { azureResponsesPath, createAzureAdapter } from '../../../src/providers/azure.js'
import { createOpenAIAdapter } from '../../../src/providers/openai.js'
import type { CallContext, ProviderAdapter } from '../../../src/providers/types.js'
import { startFakeOpenAI, type FakeUpstream } from '../../fakes/openai-upstream.js'
import { responseEvents } from '../../fakes/responses-api.js'

let fake: FakeUpstream
let agent: Agent
let openai: ProviderAdapter

beforeAll(async () => {
  fake = await startFakeOpenAI()
  agent = new Agent()
  openai = createOpenAIAdapter({ name: 'oai', type: 'openai', baseUrl: fake.url, settings: { headers: { 'x-operator': 'yes' } } }, { dispatcher: agent })
})
afterAll(async () => {
  await agent.close()
  await fake.close()
})
beforeEach(() => {
  fake.respond(() => undefined)
  fake.responses.setPlan({ kind: 'text', pieces: ['Hello', ' from', ' responses'], usage: { input: 21, output: 3, reasoning: 64 } })
})

const ctx = (over: Partial<CallContext> = {}): CallContext => ({
  apiKey: 'sk-upstream-openai-1234567890',
  upstreamModel: 'gpt-5-upstream',
  signal: AbortSignal.timeout(5000),
  requestId: 'req_resp',
  timeouts: { firstByteMs: 5000 },
  ...over,
})

/** What Codex sends (trimmed), plus a field no version of the API has (yet). */
const codexBody = () => ({
  model: 'gpt-5',
  instructions: 'You are Codex.',
  input: [
    { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'sandbox: read-only' }] },
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'what is the weather in Paris?' }] },
    { type: 'reasoning', id: 'rs_prev', summary: [], encrypted_content: 'gAAAAABclientSentOpaqueBlob==' },
  ],
  tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }, strict: false }],
  tool_choice: 'auto',
  parallel_tool_calls: true,
  reasoning: { effort: 'low', summary: 'auto' },
  store: true,
  include: ['reasoning.encrypted_content'],
  prompt_cache_key: '01a24e5b',
  x_future_param: { nested: [1, 'two'] },
})
const clientHeaders = { 'openai-beta': 'responses=v1', authorization: 'Bearer client-key-must-not-leak', 'x-codex-window-id': 'w:0' }

describe('openai native responses', () => {
  it('posts the body untouched but for model (unknown fields, encrypted reasoning) and answers with the upstream bytes', async () => {
    const body = codexBody()
    const res = await openai.responses!(body, ctx({ passHeaders: clientHeaders }))
    const seen = fake.requests.at(-1)!
    expect(seen.method).toBe('POST')
    expect(seen.path).toBe('/v1/responses')
    expect(seen.body).toEqual({ ...body, model: 'gpt-5-upstream' })
    expect(res).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-5-upstream', usage: { input_tokens: 21, output_tokens: 3, output_tokens_details: { reasoning_tokens: 64 } } })
    const output = res.output as Array<Record<string, unknown>>
    expect(output[0]).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [], encrypted_content: expect.stringMatching(/^gAAAA/) })
    expect(output[1]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text: 'Hello from responses' }] })
    expect(String(rawJsonOf(res))).toBe(JSON.stringify(res))
  })

  it('sends the upstream key and the client headers, never the client key', async () => {
    await openai.responses!(codexBody(), ctx({ passHeaders: clientHeaders }))
    const h = fake.requests.at(-1)!.headers
    expect(h.authorization).toBe('Bearer sk-upstream-openai-1234567890')
    expect(h['openai-beta']).toBe('responses=v1')
    expect(h['x-codex-window-id']).toBe('w:0')
    expect(h['x-operator']).toBe('yes')
  })

  it('streams the events as they arrive, in order, each with its bytes and sequence number', async () => {
    const events = await collect(await openai.responsesStream!(codexBody(), ctx({ passHeaders: clientHeaders })))
    expect(fake.requests.at(-1)!.body).toMatchObject({ stream: true, model: 'gpt-5-upstream', x_future_param: { nested: [1, 'two'] } })
    expect(events.map((e) => e.type)).toEqual([
      'response.created', 'response.in_progress',
      'response.output_item.added', 'response.output_item.done',
      'response.output_item.added', 'response.content_part.added',
      'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
      'response.completed',
    ])
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    expect(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('')).toBe('Hello from responses')
    expect((events[3]!.item as Record<string, unknown>).encrypted_content).toMatch(/^gAAAA/)
    for (const e of events) expect(String(rawJsonOf(e))).toBe(JSON.stringify(e))
  })

  it('relays a stream split into 1-byte pieces byte for byte', async () => {
    const events = responseEvents('resp_split', { model: 'gpt-5-upstream', input: 'hi' }, { kind: 'text', pieces: ['Grüße', ' 👋'] }, 9)
    const text = events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('')
    fake.respond(() => ({ kind: 'raw-sse', text, pieceSize: 1 }))
    const relayed = await collect(await openai.responsesStream!({ model: 'x', input: 'hi' }, ctx()))
    expect(relayed.map((e) => `event: ${e.type}\ndata: ${String(rawJsonOf(e))}\n\n`).join('')).toBe(text)
  })

  it('streams a function call whose arguments arrive in pieces', async () => {
    fake.responses.setPlan({ kind: 'function_call', name: 'get_weather', argPieces: ['{"loca', 'tion":', '"Paris"}'], callId: 'call_w1' })
    const events = await collect(await openai.responsesStream!({ ...codexBody(), include: [] }, ctx()))
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta)
    expect(deltas).toEqual(['{"loca', 'tion":', '"Paris"}'])
    expect(events.find((e) => e.type === 'response.function_call_arguments.done')).toMatchObject({ name: 'get_weather', arguments: '{"location":"Paris"}' })
    expect(events.find((e) => e.type === 'response.output_item.done')!.item).toMatchObject({ type: 'function_call', call_id: 'call_w1', name: 'get_weather', status: 'completed' })
  })

  it('reads back, lists the input items of and deletes a stored response', async () => {
    const created = await openai.responses!(codexBody(), ctx())
    const id = created.id as string
    const got = await openai.responseGet!(id, ctx({ passHeaders: clientHeaders }))
    expect(got).toEqual(created)
    expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', path: `/v1/responses/${id}`, headers: { 'openai-beta': 'responses=v1' } })

    const items = await openai.responseInputItems!(id, '?limit=2&order=asc', ctx())
    expect(fake.requests.at(-1)!.path).toBe(`/v1/responses/${id}/input_items?limit=2&order=asc`)
    expect(items).toMatchObject({ object: 'list', has_more: true, data: [{ role: 'developer' }, { role: 'user' }] })
    const newest = await openai.responseInputItems!(id, 'limit=1', ctx())
    expect(newest.data).toEqual([expect.objectContaining({ type: 'reasoning', encrypted_content: 'gAAAAABclientSentOpaqueBlob==' })])

    expect(await openai.responseDelete!(id, ctx())).toEqual({ id, object: 'response', deleted: true })
    expect(fake.requests.at(-1)!.method).toBe('DELETE')
    const gone = await proxyErrorOf(() => openai.responseGet!(id, ctx()))
    expect(gone).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'not_found', message: expect.stringContaining(`Response with id '${id}' not found`) })
  })

  it('maps an upstream 429 on create like the chat path does', async () => {
    fake.respond(() => ({ kind: 'json', status: 429, body: { error: { message: 'Rate limit reached for gpt-5', type: 'requests', code: 'rate_limit_exceeded' } }, headers: { 'retry-after': '3' } }))
    const err = await proxyErrorOf(() => openai.responsesStream!(codexBody(), ctx()))
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded', retryable: true, headers: { 'retry-after': '3' } })
  })

  it.each([
    ['rate_limit_exceeded', { status: 429, code: 'rate_limit_exceeded', retryable: true }],
    ['server_error', { status: 502, code: 'upstream_unavailable', retryable: true }],
    ['context_length_exceeded', { status: 400, code: 'context_length_exceeded', retryable: false }],
  ])('throws a mid-stream error event (%s) after the events before it', async (code, expected) => {
    const before = responseEvents('resp_err', { model: 'm', input: 'x' }, { kind: 'text', pieces: ['par'] }, 1).slice(0, 3)
    fake.respond(() => ({ kind: 'events', events: [...before, { type: 'error', code, message: `upstream says ${code}`, param: null, sequence_number: 3 }] }))
    const seen: string[] = []
    const err = await proxyErrorOf(async () => {
      for await (const e of await openai.responsesStream!(codexBody(), ctx())) seen.push(e.type)
    })
    expect(seen).toEqual(['response.created', 'response.in_progress', 'response.output_item.added'])
    expect(err).toMatchObject({ ...expected, message: expect.stringContaining(`upstream says ${code}`) })
  })

  it('relays response.failed as the final event, and reports a stream cut before its end', async () => {
    const created = responseEvents('resp_f', { model: 'm', input: 'x' }, { kind: 'text', pieces: ['a'] }, 1)[0]!
    fake.respond(() => ({ kind: 'events', events: [created, { type: 'response.failed', response: { id: 'resp_f', status: 'failed', error: { code: 'server_error', message: 'boom' } }, sequence_number: 1 }] }))
    expect((await collect(await openai.responsesStream!(codexBody(), ctx()))).map((e) => e.type)).toEqual(['response.created', 'response.failed'])

    fake.respond(() => ({ kind: 'events', events: [created] }))
    const err = await proxyErrorOf(async () => collect(await openai.responsesStream!(codexBody(), ctx())))
    expect(err).toMatchObject({ status: 502, code: 'upstream_stream_truncated' })
  })

  it('is offered by openai-compatible hosts only with settings.responses = true', () => {
    const plain = createOpenAIAdapter({ name: 'vllm', type: 'openai-compatible', baseUrl: fake.url, settings: {} }, { dispatcher: agent })
    const opted = createOpenAIAdapter({ name: 'vllm2', type: 'openai-compatible', baseUrl: fake.url, settings: { responses: true } }, { dispatcher: agent })
    expect(plain.responses).toBeUndefined()
    expect(plain.responsesStream).toBeUndefined()
    expect(plain.responseGet).toBeUndefined()
    expect(typeof opted.responses).toBe('function')
    expect(typeof opted.responseInputItems).toBe('function')
  })
})

describe('azure native responses', () => {
  const azure = (settings: Record<string, unknown> = {}) =>
    createAzureAdapter({ name: 'az', type: 'azure', baseUrl: fake.url.replace(/\/v1$/, '') + '/openai', settings }, { dispatcher: agent })
  const azureCtx = () => ctx({ apiKey: 'azure-key-0123456789', upstreamModel: 'my-gpt5-deployment' })

  it('knows the URL forms: v1 by default, v1 preview, and a dated api-version', () => {
    expect(azureResponsesPath(undefined)).toBe('openai/v1/responses')
    expect(azureResponsesPath('v1')).toBe('openai/v1/responses')
    expect(azureResponsesPath('preview')).toBe('openai/v1/responses?api-version=preview')
    expect(azureResponsesPath('2025-04-01-preview')).toBe('openai/responses?api-version=2025-04-01-preview')
  })

  it('calls {resource}/openai/v1/responses with the api-key header and the deployment as model', async () => {
    const res = await azure().responses!(codexBody(), azureCtx())
    const seen = fake.requests.at(-1)!
    expect(seen.path).toBe('/openai/v1/responses')
    expect(seen.headers['api-key']).toBe('azure-key-0123456789')
    expect(seen.headers.authorization).toBeUndefined()
    expect(seen.body).toEqual({ ...codexBody(), model: 'my-gpt5-deployment' })
    expect(res.model).toBe('my-gpt5-deployment')
  })

  it('puts the id before the api-version and merges the client query for the dated form', async () => {
    const az = azure({ responses_api_version: '2025-04-01-preview' })
    const events = await collect(await az.responsesStream!(codexBody(), azureCtx()))
    expect(fake.requests.at(-1)!.path).toBe('/openai/responses?api-version=2025-04-01-preview')
    const id = (events.at(-1)!.response as { id: string }).id
    await az.responseGet!(id, azureCtx())
    expect(fake.requests.at(-1)!.path).toBe(`/openai/responses/${id}?api-version=2025-04-01-preview`)
    await az.responseInputItems!(id, '?order=asc&limit=5', azureCtx())
    expect(fake.requests.at(-1)!.path).toBe(`/openai/responses/${id}/input_items?api-version=2025-04-01-preview&order=asc&limit=5`)
    await az.responseDelete!(id, azureCtx())
    expect(fake.requests.at(-1)).toMatchObject({ method: 'DELETE', path: `/openai/responses/${id}?api-version=2025-04-01-preview` })
  })
})
