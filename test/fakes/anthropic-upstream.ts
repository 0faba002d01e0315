/**
 * A fake Anthropic Messages API on loopback. It answers in Anthropic's real wire format (message JSON;
 * `event: <type>\ndata: <json>\n\n` SSE; `{type:'error', error:{type, message}}` bodies) and, like the
 * real API, rejects requests it would reject: missing headers or max_tokens, unknown top-level fields,
 * roles that do not alternate, tool results that answer no tool_use, temperature above 1. A mapping bug
 * in the adapter therefore fails the test with the reason in the 400 message.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FakeProvider, RecordedRequest, Scenario } from '../conformance/provider-suite.js'

export const FAKE_ANTHROPIC_KEY = 'sk-ant-upstream-fake-123'

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
}

const TOP_LEVEL = new Set(['model', 'messages', 'max_tokens', 'system', 'stop_sequences', 'temperature', 'top_p', 'top_k', 'tools', 'tool_choice', 'metadata', 'stream', 'thinking', 'service_tier'])
const BLOCK_TYPES = new Set(['text', 'image', 'document', 'tool_use', 'tool_result'])

/** What the real API would say about this request, or null when it would accept it. */
export function validateMessagesRequest(req: RecordedRequest): { status: number; message: string } | null {
  if (req.method !== 'POST' || req.path !== '/v1/messages') return { status: 404, message: `Not found: ${req.method} ${req.path}` }
  if (!req.headers['x-api-key']) return { status: 401, message: 'x-api-key header is required' }
  if (!req.headers['anthropic-version']) return { status: 400, message: 'anthropic-version: header is required' }
  const b = req.body
  if (!b || typeof b !== 'object') return { status: 400, message: 'body must be a JSON object' }
  for (const key of Object.keys(b)) if (!TOP_LEVEL.has(key)) return { status: 400, message: `${key}: Extra inputs are not permitted` }
  if (typeof b.model !== 'string' || !b.model) return { status: 400, message: 'model: Field required' }
  if (!Number.isInteger(b.max_tokens) || b.max_tokens < 1) return { status: 400, message: 'max_tokens: Field required' }
  if (b.temperature !== undefined && (b.temperature < 0 || b.temperature > 1)) return { status: 400, message: 'temperature: Input should be less than or equal to 1' }
  if (b.system !== undefined && typeof b.system !== 'string' && !Array.isArray(b.system)) return { status: 400, message: 'system: Input should be a valid string or list' }
  if (!Array.isArray(b.messages) || b.messages.length === 0) return { status: 400, message: 'messages: at least one message is required' }
  let openToolUses = new Set<string>()
  for (const [i, m] of (b.messages as Array<{ role: string; content: unknown }>).entries()) {
    if (m.role !== 'user' && m.role !== 'assistant') return { status: 400, message: `messages.${i}.role: Input should be 'user' or 'assistant'` }
    if (i > 0 && b.messages[i - 1].role === m.role) return { status: 400, message: `messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row` }
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content as Array<Record<string, any>>)
    if (!Array.isArray(blocks) || blocks.length === 0) return { status: 400, message: `messages.${i}: all messages must have non-empty content` }
    let seenOther = false
    const uses = new Set<string>()
    for (const [j, block] of blocks.entries()) {
      const at = `messages.${i}.content.${j}`
      if (!BLOCK_TYPES.has(block.type)) return { status: 400, message: `${at}.type: unknown block type '${block.type}'` }
      if (block.type === 'text' && (typeof block.text !== 'string' || block.text === '')) return { status: 400, message: `${at}: text content blocks must be non-empty` }
      if ((block.type === 'image' || block.type === 'document') && !['base64', 'url'].includes(block.source?.type)) return { status: 400, message: `${at}.source: invalid source` }
      if (block.type === 'tool_use') {
        if (m.role !== 'assistant') return { status: 400, message: `${at}: tool_use blocks are only allowed in assistant messages` }
        if (!block.input || typeof block.input !== 'object' || Array.isArray(block.input)) return { status: 400, message: `${at}.input: Input should be a valid dictionary` }
        uses.add(block.id)
      }
      if (block.type === 'tool_result') {
        if (m.role !== 'user') return { status: 400, message: `${at}: tool_result blocks are only allowed in user messages` }
        if (seenOther) return { status: 400, message: `${at}: tool_result blocks must come first in the content` }
        if (!openToolUses.has(block.tool_use_id)) return { status: 400, message: `${at}: unexpected tool_use_id found in tool_result blocks: ${block.tool_use_id}` }
      } else seenOther = true
    }
    openToolUses = uses
  }
  return null
}

export interface FakeAnthropic extends FakeProvider {
  url: string
}

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: RecordedRequest[] = []
  let scenario: Scenario = { kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } }

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const c of req) raw += c
    let body: any
    try {
      body = raw ? JSON.parse(raw) : undefined
    } catch {
      body = undefined
    }
    const recorded: RecordedRequest = { method: req.method!, path: req.url!, headers: req.headers, body }
    requests.push(recorded)
    const sendError = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake' })
      res.end(JSON.stringify({ type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message } }))
    }
    const invalid = validateMessagesRequest(recorded)
    if (invalid) return sendError(invalid.status, `fake anthropic: ${invalid.message}`)
    const s = scenario
    if (s.kind === 'error') return sendError(s.status, s.message)

    const id = 'msg_fake01ABCDEF'
    const usage = s.kind === 'stream_error' ? { prompt: 1, completion: 1 } : s.usage
    const blocks: Array<Record<string, unknown>> = []
    if (s.kind === 'text' || s.kind === 'stream_error') blocks.push({ type: 'text', text: s.text })
    if (s.kind === 'tool_call') {
      if (s.text) blocks.push({ type: 'text', text: s.text })
      blocks.push({ type: 'tool_use', id: s.id, name: s.name, input: s.args })
    }
    const stopReason = s.kind === 'tool_call' ? 'tool_use' : 'end_turn'

    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(
        JSON.stringify({
          id,
          type: 'message',
          role: 'assistant',
          model: body.model,
          content: blocks,
          stop_reason: stopReason,
          stop_sequence: null,
          usage: { input_tokens: usage.prompt, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: usage.completion },
        }),
      )
    }

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
    const send = (data: { type: string; [k: string]: unknown }) => res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`)
    send({
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.prompt, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } },
    })
    for (const [index, block] of blocks.entries()) {
      if (block.type === 'text') {
        send({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } })
        if (index === 0) send({ type: 'ping' })
        for (const piece of String(block.text).match(/.{1,5}/gs) ?? []) send({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } })
        if (s.kind === 'stream_error') {
          send({ type: 'error', error: { type: 'overloaded_error', message: s.message } })
          return res.end()
        }
      } else {
        send({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } })
        send({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } })
        for (const frag of JSON.stringify(block.input).match(/.{1,4}/gs) ?? []) send({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: frag } })
      }
      send({ type: 'content_block_stop', index })
    }
    send({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.completion } })
    send({ type: 'message_stop' })
    res.end()
  })

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    baseUrl: url,
    apiKey: FAKE_ANTHROPIC_KEY,
    keyOf: (r) => (typeof r.headers['x-api-key'] === 'string' ? r.headers['x-api-key'] : undefined),
    modelOf: (r) => r.body?.model,
    play: (next) => {
      scenario = next
    },
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
