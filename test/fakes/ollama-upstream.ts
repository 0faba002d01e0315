/**
 * A fake Ollama server on loopback, speaking Ollama's native wire format: /api/chat and /api/generate
 * stream NDJSON unless the body says `"stream": false` (as Ollama does), the last line carries done,
 * done_reason and the eval counts and has no trailing newline; tool-call arguments are JSON objects (a
 * string is refused, as Ollama's Go decoder refuses it); errors are `{"error":"…"}`, mid-stream too; a
 * model not in `models` answers 404 "try pulling it first". `replay` serves recorded bytes verbatim.
 * Scenarios may carry several tool calls (one line holds them all, as Ollama sends them), reasoning (sent
 * as `thinking`, before the text), and a piece size for the stream's bytes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FakeProvider, RecordedRequest } from '../conformance/provider-suite.js'
import { callsOf, piecesOf, writeStream, type Scenario } from './scenario.js'

export interface FakeOllama extends FakeProvider {
  /** models that exist; null accepts any */
  models: string[] | null
  /** the next requests get these bytes verbatim (split into `chunkSize` pieces), whatever they asked */
  replay(body: string | null, opts?: { contentType?: string; chunkSize?: number }): void
}

const CREATED_AT = '2024-07-02T11:45:16.216898458Z'

export async function startFakeOllama(): Promise<FakeOllama> {
  const requests: RecordedRequest[] = []
  let scenario: Scenario = { kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } }
  let replay: { body: string; contentType: string; chunkSize: number } | null = null
  const fake: FakeOllama = {
    baseUrl: '',
    apiKey: null,
    keyOf: (r) => (typeof r.headers.authorization === 'string' ? r.headers.authorization.replace(/^Bearer /, '') : undefined),
    modelOf: (r) => r.body?.model,
    play: (s) => {
      scenario = s
    },
    requests,
    models: null,
    replay: (body, opts = {}) => {
      replay = body === null ? null : { body, contentType: opts.contentType ?? 'application/x-ndjson', chunkSize: opts.chunkSize ?? body.length }
    },
    close: async () => {},
  }

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const c of req) raw += c
    const recorded: RecordedRequest = { method: req.method!, path: req.url!, headers: req.headers, body: raw ? JSON.parse(raw) : undefined }
    requests.push(recorded)
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
      res.end(JSON.stringify(body))
    }
    if (replay) {
      res.writeHead(200, { 'content-type': replay.contentType })
      for (let i = 0; i < replay.body.length; i += replay.chunkSize) {
        res.write(replay.body.slice(i, i + replay.chunkSize))
        await new Promise((r) => setImmediate(r))
      }
      return res.end()
    }
    const path = req.url!
    const body = recorded.body
    if (req.method === 'GET' && path === '/api/tags') {
      const names = fake.models ?? ['llama3.2:latest']
      return json(200, { models: names.map((name) => ({ name, model: name, modified_at: CREATED_AT, size: 1, digest: 'd', details: { format: 'gguf' } })) })
    }
    if (req.method !== 'POST' || !['/api/chat', '/api/generate', '/api/embed'].includes(path)) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      return res.end('404 page not found')
    }
    if (fake.models && !fake.models.includes(body.model)) return json(404, { error: `model "${body.model}" not found, try pulling it first` })
    for (const m of body.messages ?? []) {
      for (const tc of m.tool_calls ?? []) {
        if (typeof tc.function?.arguments !== 'object') {
          return json(400, { error: 'json: cannot unmarshal string into Go struct field ChatRequest.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments' })
        }
      }
    }
    if (path === '/api/embed') {
      const inputs = Array.isArray(body.input) ? body.input : [body.input]
      return json(200, { model: body.model, embeddings: inputs.map(() => [0.1, 0.2, 0.3]), total_duration: 1, load_duration: 1, prompt_eval_count: inputs.length * 4 })
    }

    const s = scenario
    if (s.kind === 'error') return json(s.status, { error: s.message })
    const generate = path === '/api/generate'
    const line = (content: string, extra: object = {}) =>
      generate ? { model: body.model, created_at: CREATED_AT, response: content, done: false, ...extra } : { model: body.model, created_at: CREATED_AT, message: { role: 'assistant', content, ...extra }, done: false }
    const usage = s.kind === 'stream_error' ? { prompt: 1, completion: 1 } : s.usage
    const done = { done_reason: 'stop', done: true, total_duration: 5, load_duration: 1, prompt_eval_count: usage.prompt, prompt_eval_duration: 1, eval_count: usage.completion, eval_duration: 1 }
    // Ollama gives tool calls no ids (the adapter makes them) and arguments as objects
    const toolCalls = s.kind === 'tool_call' ? callsOf(s).map((c) => ({ function: { name: c.name, arguments: c.args } })) : undefined
    const text = s.kind === 'tool_call' ? (s.text ?? '') : s.text
    const thinking = s.kind === 'stream_error' ? undefined : s.reasoning

    if (body.stream === false) {
      if (generate) return json(200, { model: body.model, created_at: CREATED_AT, response: text, ...done })
      const message = { role: 'assistant', content: text, ...(thinking ? { thinking } : {}), ...(toolCalls ? { tool_calls: toolCalls } : {}) }
      return json(200, { model: body.model, created_at: CREATED_AT, message, ...done })
    }
    // Ollama streams when `stream` is true or absent: thinking first, on lines of its own, then the text.
    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    const lines: unknown[] = [...(generate ? [] : piecesOf(thinking ?? '', 5).map((piece) => line('', { thinking: piece }))), ...piecesOf(text, 5).map((piece) => line(piece))]
    const ndjson = (all: unknown[]) => all.map((l) => JSON.stringify(l) + '\n')
    if (s.kind === 'stream_error') return writeStream(res, ndjson([...lines, { error: s.message }]), s.pieceSize)
    if (toolCalls) lines.push(line('', { tool_calls: toolCalls }))
    lines.push(generate ? { model: body.model, created_at: CREATED_AT, response: '', ...done } : { model: body.model, created_at: CREATED_AT, message: { role: 'assistant', content: '' }, ...done })
    // One write a line, and no newline after the last one, as in the recorded transcripts.
    const out = ndjson(lines)
    out[out.length - 1] = out.at(-1)!.slice(0, -1)
    return writeStream(res, out, s.pieceSize)
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
