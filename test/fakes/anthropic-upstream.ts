/**
 * A fake Anthropic Messages API on loopback. It answers in Anthropic's real wire format (message JSON;
 * `event: <type>\ndata: <json>\n\n` SSE; `{type:'error', error:{type, message}}` bodies) and, like the
 * real API, rejects requests it would reject: missing headers or max_tokens, unknown top-level fields,
 * roles that do not alternate, tool results that answer no tool_use, temperature above 1, and the
 * extended-thinking rules (budget of at least 1,024 below max_tokens; no temperature, top_k, top_p under
 * 0.95 or forced tool use with thinking; thinking blocks only at the start of assistant turns, and
 * first in the assistant turn of a tool loop). A mapping bug in the adapter therefore fails the test
 * with the reason in the 400 message.
 *
 * It plays the conformance scenarios (several tool_use blocks for parallel calls; a scenario's reasoning as a
 * signed thinking block; streams whole or in pieces of any size), counts tokens (POST
 * /v1/messages/count_tokens), records every request with its headers, and can be scripted per request
 * through `respond` (exact bytes, any status), as the OpenAI fake is.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FakeProvider, RecordedRequest } from '../conformance/provider-suite.js'
import { callsOf, piecesOf, writeStream, type Scenario } from './scenario.js'

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
/** fields the real API takes only with the beta named in anthropic-beta */
const BETA_FIELDS: Record<string, string> = { context_management: 'context-management-2025-06-27' }
const COUNT_TOKENS_FIELDS = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking'])
const BLOCK_TYPES = new Set(['text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'])

/** Thinking the fake puts before the answer: text with its signature, or a redacted block. */
export type FakeThinking = { thinking: string; signature: string } | { redacted: string }

/** A conformance scenario, plus what only Anthropic answers carry. */
export type AnthropicScenario = Scenario & { thinking?: FakeThinking[]; cache?: { read: number; creation: number } }

/** The signature the fake gives a scenario's reasoning text (a real one is opaque; this one is stable). */
export function fakeSignature(thinking: string): string {
  return `sig-${createHash('sha256').update(thinking).digest('base64')}`
}

/** The thinking blocks an answer starts with: the scenario's own, else its reasoning text, signed. */
function thinkingOf(s: AnthropicScenario): FakeThinking[] {
  if (s.thinking) return s.thinking
  const reasoning = s.kind === 'text' || s.kind === 'tool_call' ? s.reasoning : undefined
  return reasoning ? [{ thinking: reasoning, signature: fakeSignature(reasoning) }] : []
}

/** A scripted answer that replaces the scenario for one request. */
export type AnthropicScripted =
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string> }
  /** an event stream written exactly as given, in pieces of `pieceSize` bytes when set */
  | { kind: 'raw-sse'; text: string; pieceSize?: number }

type Problem = { status: number; message: string }

/** What the real API would say about this request, or null when it would accept it. */
export function validateMessagesRequest(req: RecordedRequest): Problem | null {
  const path = req.path.split('?')[0]
  const counting = path === '/v1/messages/count_tokens'
  if (req.method !== 'POST' || (path !== '/v1/messages' && !counting)) return { status: 404, message: `Not found: ${req.method} ${req.path}` }
  if (!req.headers['x-api-key']) return { status: 401, message: 'x-api-key header is required' }
  if (!req.headers['anthropic-version']) return { status: 400, message: 'anthropic-version: header is required' }
  const b = req.body
  if (!b || typeof b !== 'object') return { status: 400, message: 'body must be a JSON object' }
  const betas = String(req.headers['anthropic-beta'] ?? '').split(',').map((s) => s.trim())
  for (const key of Object.keys(b)) {
    const beta = BETA_FIELDS[key]
    if (beta && betas.includes(beta)) continue
    if (!(counting ? COUNT_TOKENS_FIELDS : TOP_LEVEL).has(key)) return { status: 400, message: `${key}: Extra inputs are not permitted` }
  }
  if (typeof b.model !== 'string' || !b.model) return { status: 400, message: 'model: Field required' }
  if (!counting && (!Number.isInteger(b.max_tokens) || b.max_tokens < 1)) return { status: 400, message: 'max_tokens: Field required' }
  if (b.temperature !== undefined && (b.temperature < 0 || b.temperature > 1)) return { status: 400, message: 'temperature: Input should be less than or equal to 1' }
  if (b.system !== undefined && typeof b.system !== 'string' && !Array.isArray(b.system)) return { status: 400, message: 'system: Input should be a valid string or list' }
  if (!Array.isArray(b.messages) || b.messages.length === 0) return { status: 400, message: 'messages: at least one message is required' }
  return validateThinking(b, counting) ?? validateMessages(b)
}

function validateThinking(b: Record<string, any>, counting: boolean): Problem | null {
  const t = b.thinking
  if (t === undefined || t?.type === 'disabled') return null
  if (t?.type !== 'enabled') return { status: 400, message: "thinking.type: Input should be 'enabled' or 'disabled'" }
  if (!Number.isInteger(t.budget_tokens) || t.budget_tokens < 1024) return { status: 400, message: 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024' }
  if (!counting && t.budget_tokens >= b.max_tokens) return { status: 400, message: '`max_tokens` must be greater than `thinking.budget_tokens`' }
  if (b.temperature !== undefined && b.temperature !== 1) return { status: 400, message: '`temperature` may only be set to 1 when thinking is enabled' }
  if (b.top_k !== undefined) return { status: 400, message: '`top_k` may not be set when thinking is enabled' }
  if (b.top_p !== undefined && b.top_p < 0.95) return { status: 400, message: '`top_p` must be greater than or equal to 0.95 when thinking is enabled' }
  if (b.tool_choice?.type === 'any' || b.tool_choice?.type === 'tool') return { status: 400, message: 'Thinking may not be enabled when tool_choice forces tool use.' }
  // In a tool loop (the request ends with tool results) the assistant turn that called the tools must open with its thinking.
  const messages = b.messages as Array<{ role: string; content: any }>
  const last = messages.at(-1)
  const answered = messages.at(-2)
  const endsWithResults = last?.role === 'user' && Array.isArray(last.content) && last.content.some((c: any) => c.type === 'tool_result')
  if (endsWithResults && answered?.role === 'assistant' && Array.isArray(answered.content) && !['thinking', 'redacted_thinking'].includes(answered.content[0]?.type)) {
    return { status: 400, message: `messages.${messages.length - 2}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${answered.content[0]?.type}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block.` }
  }
  return null
}

function validateMessages(b: Record<string, any>): Problem | null {
  let openToolUses = new Set<string>()
  for (const [i, m] of (b.messages as Array<{ role: string; content: unknown }>).entries()) {
    if (m.role !== 'user' && m.role !== 'assistant') return { status: 400, message: `messages.${i}.role: Input should be 'user' or 'assistant'` }
    if (i > 0 && b.messages[i - 1].role === m.role) return { status: 400, message: `messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row` }
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content as Array<Record<string, any>>)
    if (!Array.isArray(blocks) || blocks.length === 0) return { status: 400, message: `messages.${i}: all messages must have non-empty content` }
    let seenOther = false
    let seenNonThinking = false
    const uses = new Set<string>()
    for (const [j, block] of blocks.entries()) {
      const at = `messages.${i}.content.${j}`
      if (!BLOCK_TYPES.has(block.type)) return { status: 400, message: `${at}.type: unknown block type '${block.type}'` }
      if (block.type === 'text' && (typeof block.text !== 'string' || block.text === '')) return { status: 400, message: `${at}: text content blocks must be non-empty` }
      if ((block.type === 'image' || block.type === 'document') && !['base64', 'url'].includes(block.source?.type)) return { status: 400, message: `${at}.source: invalid source` }
      if (block.type === 'thinking' || block.type === 'redacted_thinking') {
        if (m.role !== 'assistant') return { status: 400, message: `${at}: thinking blocks are only allowed in assistant messages` }
        if (seenNonThinking) return { status: 400, message: `${at}: thinking blocks must come before other content` }
        if (block.type === 'thinking' && (typeof block.thinking !== 'string' || typeof block.signature !== 'string' || !block.signature)) return { status: 400, message: `${at}.signature: Field required` }
        if (block.type === 'redacted_thinking' && typeof block.data !== 'string') return { status: 400, message: `${at}.data: Field required` }
        continue
      }
      seenNonThinking = true
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

/** A stable, plausible token count for count_tokens: about four characters a token. */
export function fakeTokenCount(body: Record<string, unknown>): number {
  const text = JSON.stringify([body.system ?? '', body.messages ?? [], body.tools ?? []])
  return Math.max(1, Math.ceil(text.length / 4))
}

export interface FakeAnthropic extends FakeProvider {
  url: string
  play(scenario: AnthropicScenario): void
  /** scripts the answer per request; undefined falls back to the scenario */
  respond(fn: (req: RecordedRequest) => AnthropicScripted | undefined): void
}

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: RecordedRequest[] = []
  let scenario: AnthropicScenario = { kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } }
  let script: (req: RecordedRequest) => AnthropicScripted | undefined = () => undefined

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    // decoded whole: a character split across two chunks stays one character
    const raw = Buffer.concat(chunks).toString('utf8')
    let body: any
    try {
      body = raw ? JSON.parse(raw) : undefined
    } catch {
      body = undefined
    }
    const recorded: RecordedRequest = { method: req.method!, path: req.url!, headers: req.headers, body, raw }
    requests.push(recorded)
    const sendError = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake' })
      res.end(JSON.stringify({ type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message }, request_id: 'req_fake' }))
    }
    const scripted = script(recorded)
    if (scripted) return writeScripted(res, scripted)
    const invalid = validateMessagesRequest(recorded)
    if (invalid) return sendError(invalid.status, `fake anthropic: ${invalid.message}`)
    if (recorded.path.startsWith('/v1/messages/count_tokens')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ input_tokens: fakeTokenCount(body) }))
    }
    const s = scenario
    if (s.kind === 'error') return sendError(s.status, s.message)

    const id = 'msg_fake01ABCDEF'
    const usage = s.kind === 'stream_error' ? { prompt: 1, completion: 1 } : s.usage
    // a scenario's cached tokens are part of its prompt; Anthropic counts cache reads apart from input_tokens
    const cached = s.cache ? 0 : (usage.cached ?? 0)
    const cache = { cache_creation_input_tokens: s.cache?.creation ?? 0, cache_read_input_tokens: s.cache?.read ?? cached }
    const blocks: Array<Record<string, unknown>> = []
    for (const t of thinkingOf(s)) blocks.push('redacted' in t ? { type: 'redacted_thinking', data: t.redacted } : { type: 'thinking', thinking: t.thinking, signature: t.signature })
    if (s.kind === 'text' || s.kind === 'stream_error') blocks.push({ type: 'text', text: s.text })
    if (s.kind === 'tool_call') {
      if (s.text) blocks.push({ type: 'text', text: s.text })
      for (const call of callsOf(s)) blocks.push({ type: 'tool_use', id: call.id, name: call.name, input: call.args })
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
          usage: { input_tokens: usage.prompt - cached, ...cache, output_tokens: usage.completion },
        }),
      )
    }

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
    const events: string[] = []
    const send = (data: { type: string; [k: string]: unknown }) => events.push(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`)
    send({
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.prompt - cached, ...cache, output_tokens: 1 } },
    })
    for (const [index, block] of blocks.entries()) {
      if (block.type === 'thinking') {
        // as the API streams it: an empty block, the text in pieces, then the whole signature in one delta
        send({ type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } })
        for (const piece of piecesOf(String(block.thinking), 6)) send({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: piece } })
        send({ type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: block.signature } })
      } else if (block.type === 'redacted_thinking') {
        send({ type: 'content_block_start', index, content_block: block })
      } else if (block.type === 'text') {
        send({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } })
        if (index === 0) send({ type: 'ping' })
        for (const piece of piecesOf(String(block.text), 5)) send({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } })
        if (s.kind === 'stream_error') {
          send({ type: 'error', error: { type: 'overloaded_error', message: s.message } })
          return writeStream(res, events, s.pieceSize)
        }
      } else {
        send({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } })
        // as the API streams it: an empty piece first, then the input's JSON in pieces (none for an empty input)
        send({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } })
        const input = JSON.stringify(block.input)
        if (input !== '{}') for (const frag of piecesOf(input, 4)) send({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: frag } })
      }
      send({ type: 'content_block_stop', index })
    }
    send({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.completion } })
    send({ type: 'message_stop' })
    return writeStream(res, events, s.pieceSize)
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
    respond: (fn) => {
      script = fn
    },
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

async function writeScripted(res: ServerResponse, answer: AnthropicScripted): Promise<void> {
  if (answer.kind === 'json') {
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
    res.end(JSON.stringify(answer.body))
    return
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
  return writeStream(res, [answer.text], answer.pieceSize)
}
