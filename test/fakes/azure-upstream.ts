/**
 * A fake Azure OpenAI resource on loopback, speaking Azure's wire format: deployments in the path,
 * `api-version` required in the query, the key in an `api-key` header, Azure's extra response fields
 * (prompt_filter_results, content_filter_results), the first stream chunk with `choices: []` and empty
 * id/model/object, a mid-stream chunk with content_filter_results and no delta, and Azure's error bodies.
 * It plays the conformance scenarios (parallel tool calls, reasoning_tokens, streams whole or in pieces of
 * any size), on chat completions and on the v1 Responses API ({base}/openai/v1/responses, OpenAI's wire
 * format, no api-version); `override` answers single requests any other way.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FakeProvider, RecordedRequest } from '../conformance/provider-suite.js'
import { chatUsage, openAIError, writeAnswer } from './openai-upstream.js'
import { createResponsesStore, planOf } from './responses-api.js'
import { callsOf, piecesOf, writeStream, type Scenario } from './scenario.js'

export interface FakeAzure extends FakeProvider {
  /** keys the resource accepts; anything else gets Azure's 401 */
  validKeys: Set<string>
  /** answers a request before the scenario does, when it returns something */
  override: ((req: RecordedRequest) => { status: number; body: unknown } | undefined) | null
}

export const AZURE_TEST_KEY = '0123456789abcdef0123456789abcdef'
const UNDERLYING_MODEL = 'gpt-4o-2024-08-06'

const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
}
const PROMPT_FILTER_RESULTS = [{ prompt_index: 0, content_filter_results: { ...FILTER_OK, jailbreak: { filtered: false, detected: false } } }]

/** Azure's 400 for a prompt its content filter flags (the shape of errorResponse / innerError in the spec). */
export function azureContentFilterBody(): unknown {
  return {
    error: {
      message:
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
      type: null,
      param: 'prompt',
      code: 'content_filter',
      status: 400,
      innererror: {
        code: 'ResponsibleAIPolicyViolation',
        content_filter_result: { ...FILTER_OK, violence: { filtered: true, severity: 'medium' }, jailbreak: { filtered: false, detected: false } },
      },
    },
  }
}

export async function startFakeAzure(opts: { keys?: string[] } = {}): Promise<FakeAzure> {
  const requests: RecordedRequest[] = []
  let scenario: Scenario = { kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } }
  const responses = createResponsesStore()
  const fake: FakeAzure = {
    baseUrl: '',
    settings: { api_version: '2024-10-21' },
    apiKey: opts.keys?.[0] ?? AZURE_TEST_KEY,
    keyOf: (r) => (typeof r.headers['api-key'] === 'string' ? r.headers['api-key'] : undefined),
    modelOf: (r) => /\/openai\/deployments\/([^/]+)\//.exec(r.path)?.[1]?.replace(/%2F/gi, '/'),
    play: (s) => {
      scenario = s
      if (s.kind !== 'error') responses.setPlan(planOf(s))
    },
    requests,
    validKeys: new Set(opts.keys ?? [AZURE_TEST_KEY]),
    override: null,
    close: async () => {},
  }

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const c of req) raw += c
    const recorded: RecordedRequest = { method: req.method!, path: req.url!, headers: req.headers, body: raw ? JSON.parse(raw) : undefined }
    requests.push(recorded)
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'apim-request-id': 'fake-apim-id' })
      res.end(JSON.stringify(body))
    }
    const url = new URL(req.url!, 'http://fake')
    const key = req.headers['api-key']
    if (typeof key !== 'string' || !fake.validKeys.has(key)) {
      return json(401, {
        error: {
          code: '401',
          message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
        },
      })
    }
    // the v1 API (Responses) takes no api-version; everything else needs one
    const v1 = url.pathname.startsWith('/openai/v1/')
    if (!v1 && !url.searchParams.get('api-version')) return json(404, { error: { code: '404', message: 'Resource not found' } })
    const answer = fake.override?.(recorded)
    if (answer) return json(answer.status, answer.body)
    if (v1 && url.pathname.startsWith('/openai/v1/responses')) {
      const native = scenario.kind === 'error' ? openAIError(scenario.status, scenario.message) : responses.answer(recorded)
      return writeAnswer(req, res, native ?? { kind: 'json', status: 404, body: { error: { code: '404', message: 'Resource not found' } } })
    }
    if (req.method === 'GET' && url.pathname === '/openai/models') {
      return json(200, { object: 'list', data: [{ id: UNDERLYING_MODEL, object: 'model', status: 'succeeded', capabilities: { chat_completion: true } }] })
    }
    const route = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/.exec(url.pathname)
    if (req.method !== 'POST' || !route) return json(404, { error: { code: '404', message: 'Resource not found' } })
    const body = recorded.body
    if (route[2] === 'embeddings') {
      const inputs = Array.isArray(body.input) ? body.input : [body.input]
      return json(200, { object: 'list', model: 'text-embedding-3-small', data: inputs.map((_: unknown, index: number) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })), usage: { prompt_tokens: 3, total_tokens: 3 } })
    }

    const s = scenario
    if (s.kind === 'error') {
      return json(s.status, { error: { code: s.status === 429 ? '429' : String(s.status), message: s.message, param: null, type: null } })
    }
    const base = { id: 'chatcmpl-azure', created: 1_700_000_000, model: UNDERLYING_MODEL, system_fingerprint: 'fp_azure' }
    const calls = s.kind === 'tool_call' ? callsOf(s) : []
    if (!body.stream) {
      const message =
        s.kind === 'tool_call'
          ? { role: 'assistant', content: s.text ?? null, refusal: null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } })) }
          : { role: 'assistant', content: s.kind === 'text' ? s.text : '', refusal: null }
      return json(200, {
        ...base,
        object: 'chat.completion',
        prompt_filter_results: PROMPT_FILTER_RESULTS,
        choices: [{ index: 0, message, finish_reason: s.kind === 'tool_call' ? 'tool_calls' : 'stop', logprobs: null, content_filter_results: FILTER_OK }],
        usage: s.kind === 'stream_error' ? chatUsage({ prompt: 1, completion: 1 }) : chatUsage(s.usage),
      })
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'apim-request-id': 'fake-apim-id' })
    const events: string[] = []
    const write = (data: unknown) => events.push(`data: ${JSON.stringify(data)}\n\n`)
    const send = (choices: unknown[], extra: object = {}) => write({ ...base, object: 'chat.completion.chunk', choices, ...extra })
    // Azure's first event: prompt filter results, no choices, empty id/model/object.
    write({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: PROMPT_FILTER_RESULTS })
    send([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null, content_filter_results: {} }])
    if (s.kind === 'text' || s.kind === 'stream_error') {
      for (const piece of piecesOf(s.text, 5)) send([{ index: 0, delta: { content: piece }, finish_reason: null, logprobs: null, content_filter_results: FILTER_OK }])
      if (s.kind === 'stream_error') {
        write({ error: { code: '500', message: s.message } })
        return writeStream(res, events, s.pieceSize)
      }
      // Asynchronous filtering: results for text already sent, on a choice without a delta.
      send([{ index: 0, finish_reason: null, content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: s.text.length }, content_filter_results: FILTER_OK }])
      send([{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }])
    } else {
      if (s.text) send([{ index: 0, delta: { content: s.text }, finish_reason: null, logprobs: null }])
      calls.forEach((c, index) => {
        send([{ index: 0, delta: { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, finish_reason: null, logprobs: null }])
        for (const frag of piecesOf(JSON.stringify(c.args), 4)) send([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: frag } }] }, finish_reason: null, logprobs: null }])
      })
      send([{ index: 0, delta: {}, finish_reason: 'tool_calls', logprobs: null }])
    }
    if (body.stream_options?.include_usage) send([], { usage: chatUsage(s.usage) })
    events.push('data: [DONE]\n\n')
    return writeStream(res, events, s.pieceSize)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  fake.baseUrl = `http://127.0.0.1:${port}`
  fake.close = () =>
    new Promise((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  return fake
}
