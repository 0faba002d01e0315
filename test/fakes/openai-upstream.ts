/**
 * A fake OpenAI API on loopback that records every request it receives and answers in OpenAI's real
 * wire format (JSON, or `data:` SSE ending with `data: [DONE]`). Behaviour per request is scripted
 * through `respond`, so tests can inject failures, delays and hangs.
 *
 * It also serves the Responses API (responses-api.ts builds its objects and events): POST /responses
 * answers with a Response object, or with the event stream (`event:` lines, sequence numbers); responses
 * created with `store` other than false can be read back, listed (input_items) and deleted, as upstream.
 * Any path ending in /responses… is served, so Azure's /openai/v1/responses reaches it too.
 *
 * `play` answers chat completions and Responses creates with a conformance scenario (provider-suite.ts),
 * as OpenAI would: text, tool calls (several in one answer), reasoning (`reasoning_content`, as OpenAI-compatible
 * reasoning hosts send it, and reasoning_tokens), errors before the first byte and mid-stream, streams
 * written whole or in pieces of any size. `respond` still wins over it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FakeProvider } from '../conformance/provider-suite.js'
import { callsOf, piecesOf, writeStream, type PlayedUsage, type Scenario } from './scenario.js'
import { createResponsesStore, planOf } from './responses-api.js'

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: any
}

export type Scripted =
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string>; delayMs?: number }
  /** exactly these bytes as a JSON answer (formatting and escapes as a real upstream may send them), or as `contentType` */
  | { kind: 'raw'; text: string; contentType?: string }
  /** an event stream written exactly as given, in pieces of `pieceSize` bytes when set */
  | { kind: 'raw-sse'; text: string; pieceSize?: number }
  /** an event stream of events already in their wire form: one write each, or their bytes in pieces of `pieceSize` */
  | { kind: 'stream'; events: string[]; pieceSize?: number }
  | { kind: 'sse'; events: unknown[]; gapMs?: number; done?: boolean; hangAfter?: number }
  /** named events, as the Responses API streams them: `event: <type>` and `data: <json>`, no [DONE] */
  | { kind: 'events'; events: Array<{ type: string }>; gapMs?: number; hangAfter?: number; pieceSize?: number }
  | { kind: 'hang' }
  | { kind: 'reset' }

export interface FakeUpstream {
  url: string
  requests: RecordedRequest[]
  /** the Responses API's routes and the responses created so far */
  responses: ReturnType<typeof createResponsesStore>
  /** the client aborted this many requests (their sockets closed before the answer ended) */
  aborted: () => number
  respond: (fn: (req: RecordedRequest) => Scripted | undefined) => void
  /** what the next chat completions and Responses creates answer (null: the default answers) */
  play(scenario: Scenario | null): void
  close(): Promise<void>
}

export function chatCompletion(model: string, content: string, usage = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }) {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage,
    system_fingerprint: 'fp_fake',
  }
}

export function chatChunks(model: string, pieces: string[], usage = { prompt_tokens: 5, completion_tokens: pieces.length, total_tokens: 5 + pieces.length }) {
  const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model, system_fingerprint: 'fp_fake' }
  return [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }] },
    ...pieces.map((p) => ({ ...base, choices: [{ index: 0, delta: { content: p }, finish_reason: null, logprobs: null }] })),
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }] },
    { ...base, choices: [], usage },
  ]
}

export async function startFakeOpenAI(): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = []
  let aborted = 0
  let script: (req: RecordedRequest) => Scripted | undefined = () => undefined
  const sockets = new Set<import('node:net').Socket>()

  const responses = createResponsesStore()
  const defaultAnswer = (req: RecordedRequest): Scripted => {
    const native = responses.answer(req)
    if (native) return native
    if (req.path.endsWith('/embeddings')) {
      const inputs = Array.isArray(req.body.input) ? req.body.input : [req.body.input]
      return {
        kind: 'json',
        body: { object: 'list', model: req.body.model, data: inputs.map((_: unknown, index: number) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })), usage: { prompt_tokens: 3, total_tokens: 3 } },
      }
    }
    if (req.path.endsWith('/models')) return { kind: 'json', body: { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 1, owned_by: 'openai' }] } }
    if (req.body?.stream) return { kind: 'sse', events: chatChunks(req.body.model, ['Hello', ' from', ' fake']) }
    return { kind: 'json', body: chatCompletion(req.body?.model, 'Hello from fake') }
  }

  let scenario: Scenario | null = null
  const played = (req: RecordedRequest): Scripted | undefined => {
    if (!scenario || req.method !== 'POST') return undefined
    const path = req.path.split('?')[0]!
    if (path.endsWith('/chat/completions')) return chatScenarioAnswer(scenario, req.body)
    // the Responses store plays the scenario's plan; only errors are answered here
    if (path.endsWith('/responses') && scenario.kind === 'error') return openAIError(scenario.status, scenario.message)
    return undefined
  }

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const recorded: RecordedRequest = { method: req.method!, path: req.url!, headers: req.headers, body: raw ? JSON.parse(raw) : undefined }
    requests.push(recorded)
    res.on('close', () => {
      if (!res.writableFinished) aborted++
    })
    await writeAnswer(req, res, script(recorded) ?? played(recorded) ?? defaultAnswer(recorded))
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    responses,
    aborted: () => aborted,
    respond: (fn) => {
      script = fn
    },
    play: (s) => {
      scenario = s
      if (s && s.kind !== 'error') responses.setPlan(planOf(s))
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Writes a scripted answer in OpenAI's wire format (shared with the Azure fake). */
export async function writeAnswer(req: IncomingMessage, res: ServerResponse, answer: Scripted): Promise<void> {
  switch (answer.kind) {
    case 'json':
      if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs))
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
      res.end(JSON.stringify(answer.body))
      return
    case 'raw':
      res.writeHead(200, { 'content-type': answer.contentType ?? 'application/json' })
      res.end(answer.text)
      return
    case 'raw-sse':
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      return writeStream(res, [answer.text], answer.pieceSize)
    case 'stream':
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      return writeStream(res, answer.events, answer.pieceSize)
    case 'events': {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
      if (answer.pieceSize) return writeStream(res, answer.events.map(namedEvent), answer.pieceSize)
      for (const [i, event] of answer.events.entries()) {
        if (answer.hangAfter !== undefined && i >= answer.hangAfter) return
        if (res.destroyed) return
        res.write(namedEvent(event))
        if (answer.gapMs) await new Promise((r) => setTimeout(r, answer.gapMs))
      }
      res.end()
      return
    }
    case 'sse': {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const [i, event] of answer.events.entries()) {
        if (answer.hangAfter !== undefined && i >= answer.hangAfter) return
        if (res.destroyed) return
        res.write(dataEvent(event))
        if (answer.gapMs) await new Promise((r) => setTimeout(r, answer.gapMs))
      }
      if (answer.done !== false) res.write('data: [DONE]\n\n')
      res.end()
      return
    }
    case 'hang':
      return
    case 'reset':
      req.socket.destroy()
      return
  }
}

const namedEvent = (event: { type: string }) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
const dataEvent = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`

/** OpenAI's error body for a status: a 429 is a rate limit, 5xx a server error. */
export function openAIError(status: number, message: string): Scripted {
  const [type, code] = status === 429 ? ['requests', 'rate_limit_exceeded'] : status >= 500 ? ['server_error', null] : ['invalid_request_error', null]
  return { kind: 'json', status, body: { error: { message, type, param: null, code } } }
}

export function chatUsage(u: PlayedUsage) {
  return {
    prompt_tokens: u.prompt,
    completion_tokens: u.completion,
    total_tokens: u.prompt + u.completion,
    ...(u.cached !== undefined ? { prompt_tokens_details: { cached_tokens: u.cached } } : {}),
    ...(u.reasoning !== undefined ? { completion_tokens_details: { reasoning_tokens: u.reasoning } } : {}),
  }
}

/**
 * A scenario as OpenAI's chat completions answer it: the completion, or its stream (reasoning_content,
 * text in pieces of five characters, each tool call's header and then its arguments in pieces of four,
 * the finish reason, usage when asked, [DONE]); a mid-stream failure is a `data: {"error":…}` event.
 */
export function chatScenarioAnswer(s: Scenario, body: any): Scripted {
  if (s.kind === 'error') return openAIError(s.status, s.message)
  const base = { id: 'chatcmpl-x', created: 1_700_000_000, model: body.model }
  const calls = s.kind === 'tool_call' ? callsOf(s) : []
  const reasoning = s.kind === 'stream_error' ? undefined : s.reasoning
  const usage = chatUsage(s.kind === 'stream_error' ? { prompt: 1, completion: 1 } : s.usage)
  const finish = calls.length > 0 ? 'tool_calls' : 'stop'
  if (!body.stream) {
    const message = {
      role: 'assistant',
      content: s.kind === 'tool_call' ? (s.text ?? null) : s.text,
      refusal: null,
      ...(reasoning ? { reasoning_content: reasoning } : {}),
      ...(calls.length > 0 ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } })) } : {}),
    }
    return { kind: 'json', body: { ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: finish, logprobs: null }], usage } }
  }
  const events: string[] = []
  const send = (choices: unknown[], extra: object = {}) => events.push(dataEvent({ ...base, object: 'chat.completion.chunk', choices, ...extra }))
  const delta = (d: object) => send([{ index: 0, delta: d, finish_reason: null }])
  delta({ role: 'assistant', content: '' })
  for (const piece of piecesOf(reasoning ?? '', 5)) delta({ reasoning_content: piece })
  const text = s.kind === 'tool_call' ? (s.text ?? '') : s.text
  for (const piece of piecesOf(text, 5)) delta({ content: piece })
  if (s.kind === 'stream_error') {
    events.push(dataEvent({ error: { message: s.message, type: 'server_error' } }))
    return { kind: 'stream', events, pieceSize: s.pieceSize }
  }
  calls.forEach((c, index) => {
    delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] })
    for (const frag of piecesOf(JSON.stringify(c.args), 4)) delta({ tool_calls: [{ index, function: { arguments: frag } }] })
  })
  send([{ index: 0, delta: {}, finish_reason: finish }])
  if (body.stream_options?.include_usage) send([], { usage })
  events.push('data: [DONE]\n\n')
  return { kind: 'stream', events, pieceSize: s.pieceSize }
}

/** The fake as the conformance suite drives it. */
export async function startOpenAIProvider(): Promise<FakeProvider> {
  const fake = await startFakeOpenAI()
  return {
    baseUrl: fake.url,
    apiKey: 'sk-upstream-openai-123',
    keyOf: (r) => String(r.headers.authorization ?? '').replace(/^Bearer /, ''),
    modelOf: (r) => r.body?.model,
    play: fake.play,
    requests: fake.requests,
    close: fake.close,
  }
}
