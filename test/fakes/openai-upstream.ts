/**
 * A fake OpenAI API on loopback that records every request it receives and answers in OpenAI's real
 * wire format (JSON, or `data:` SSE ending with `data: [DONE]`). Behaviour per request is scripted
 * through `respond`, so tests can inject failures, delays and hangs.
 *
 * It also serves the Responses API (responses-api.ts builds its objects and events): POST /responses
 * answers with a Response object, or with the event stream (`event:` lines, sequence numbers); responses
 * created with `store` other than false can be read back, listed (input_items) and deleted, as upstream.
 * Any path ending in /responses… is served, so Azure's /openai/v1/responses reaches it too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createResponsesStore } from './responses-api.js'

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
  | { kind: 'sse'; events: unknown[]; gapMs?: number; done?: boolean; hangAfter?: number }
  /** named events, as the Responses API streams them: `event: <type>` and `data: <json>`, no [DONE] */
  | { kind: 'events'; events: Array<{ type: string }>; gapMs?: number; hangAfter?: number }
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

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const recorded: RecordedRequest = { method: req.method!, path: req.url!, headers: req.headers, body: raw ? JSON.parse(raw) : undefined }
    requests.push(recorded)
    res.on('close', () => {
      if (!res.writableFinished) aborted++
    })
    const answer = script(recorded) ?? defaultAnswer(recorded)
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
      case 'raw-sse': {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const bytes = Buffer.from(answer.text)
        const size = answer.pieceSize ?? bytes.length
        for (let i = 0; i < bytes.length; i += size) {
          if (res.destroyed) return
          res.write(bytes.subarray(i, i + size))
          if (answer.pieceSize) await new Promise((r) => setImmediate(r))
        }
        res.end()
        return
      }
      case 'events': {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
        for (const [i, event] of answer.events.entries()) {
          if (answer.hangAfter !== undefined && i >= answer.hangAfter) return
          if (res.destroyed) return
          res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
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
          res.write(`data: ${JSON.stringify(event)}\n\n`)
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
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
