/**
 * OpenAI's Responses API as the fake upstreams speak it: the Response object, its output items, and the
 * event sequence of a streamed response, shaped after the spec's schemas and examples
 * (shared/testdata/openai/openapi.yaml: Response, ResponseUsage, OutputMessage, FunctionToolCall,
 * ReasoningItem, Response*Event). Every event carries a sequence_number, counted from 0 per stream.
 */
import { callsOf, piecesOf, type Scenario } from './scenario.js'
import type { RecordedRequest, Scripted } from './openai-upstream.js'

type Json = Record<string, unknown>
type Usage = { input: number; output: number; reasoning?: number; cached?: number }

/** What the model "answers": text, or function calls whose arguments stream in pieces. */
export type ResponsePlan =
  | ({ kind: 'text'; pieces: string[]; usage?: Usage } & PlanExtras)
  | ({
      kind: 'function_call'
      name: string
      argPieces: string[]
      callId?: string
      usage?: Usage
      /** a message before the call */
      text?: string
      /** further calls in the same answer (parallel tool calls) */
      parallel?: Array<{ name: string; argPieces: string[]; callId: string }>
    } & PlanExtras)
  /** a stream that sends these text pieces, then fails with an `error` event (a JSON answer is just the text) */
  | ({ kind: 'failure'; pieces: string[]; message: string } & PlanExtras)

interface PlanExtras {
  /** the reasoning summary's text, in the reasoning item the request asked for */
  reasoning?: string
  /** streams are written in pieces of this many bytes when set */
  pieceSize?: number
}

/** The encrypted_content of the fake's reasoning items (OpenAI's is opaque too). */
export const FAKE_ENCRYPTED = 'gAAAAABfakeEncryptedReasoning0123456789=='

export function responseUsage(u: Usage = { input: 12, output: 6 }): Json {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cached ?? 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    total_tokens: u.input + u.output,
  }
}

export function messageItem(id: string, text: string, status = 'completed'): Json {
  return { id, type: 'message', status, role: 'assistant', content: status === 'completed' ? [{ type: 'output_text', text, annotations: [], logprobs: [] }] : [] }
}

export function functionCallItem(id: string, name: string, args: string, callId: string, status = 'completed'): Json {
  return { id, type: 'function_call', status, arguments: args, call_id: callId, name }
}

export function reasoningItem(id: string, summary?: string): Json {
  return { id, type: 'reasoning', summary: summary ? [{ type: 'summary_text', text: summary }] : [], encrypted_content: FAKE_ENCRYPTED }
}

/** The Response object for a request: the request's own parameters echoed, as the API does. */
export function responseObject(id: string, req: Json, output: Json[], status: 'in_progress' | 'completed', usage: Usage | undefined): Json {
  return {
    id,
    object: 'response',
    created_at: 1_741_290_958,
    status,
    background: false,
    completed_at: status === 'completed' ? 1_741_290_959 : null,
    error: null,
    incomplete_details: null,
    instructions: req.instructions ?? null,
    max_output_tokens: req.max_output_tokens ?? null,
    model: req.model,
    output,
    parallel_tool_calls: req.parallel_tool_calls ?? true,
    previous_response_id: req.previous_response_id ?? null,
    reasoning: { effort: (req.reasoning as Json | undefined)?.effort ?? null, summary: (req.reasoning as Json | undefined)?.summary ?? null },
    store: req.store ?? true,
    temperature: req.temperature ?? 1.0,
    text: req.text ?? { format: { type: 'text' } },
    tool_choice: req.tool_choice ?? 'auto',
    tools: req.tools ?? [],
    top_p: req.top_p ?? 1.0,
    truncation: req.truncation ?? 'disabled',
    usage: status === 'completed' ? responseUsage(usage) : null,
    user: null,
    metadata: req.metadata ?? {},
  }
}

/** Whether the request asked for reasoning items with their encrypted content (Codex does). */
const wantsEncryptedReasoning = (req: Json) => Array.isArray(req.include) && req.include.includes('reasoning.encrypted_content') && req.reasoning != null

/** The completed output for a plan: each item, with the pieces its text or arguments stream in. */
function planItems(req: Json, plan: ResponsePlan, n: number): Array<{ item: Json; pieces: string[] }> {
  const out: Array<{ item: Json; pieces: string[] }> = []
  if (wantsEncryptedReasoning(req)) out.push({ item: reasoningItem(`rs_fake${n}`, (req.reasoning as Json).summary ? plan.reasoning : undefined), pieces: [] })
  const message = (pieces: string[]) => out.push({ item: messageItem(`msg_fake${n}`, pieces.join('')), pieces })
  if (plan.kind !== 'function_call') message(plan.pieces)
  else {
    if (plan.text) message([plan.text])
    const calls = [{ name: plan.name, argPieces: plan.argPieces, callId: plan.callId ?? `call_fake${n}` }, ...(plan.parallel ?? [])]
    calls.forEach((c, i) => out.push({ item: functionCallItem(`fc_fake${n}${i ? `_${i}` : ''}`, c.name, c.argPieces.join(''), c.callId), pieces: c.argPieces }))
  }
  return out
}

/** The completed output for a plan. */
export function planOutput(req: Json, plan: ResponsePlan, n: number): Json[] {
  return planItems(req, plan, n).map((p) => p.item)
}

/** The event sequence of a streamed response, ending with response.completed (or an `error` event, for a failure plan). */
export function responseEvents(id: string, req: Json, plan: ResponsePlan, n: number): Array<{ type: string } & Json> {
  const events: Array<{ type: string } & Json> = []
  const push = (type: string, fields: Json) => events.push({ type, ...fields, sequence_number: events.length })
  const items = planItems(req, plan, n)
  push('response.created', { response: responseObject(id, req, [], 'in_progress', undefined) })
  push('response.in_progress', { response: responseObject(id, req, [], 'in_progress', undefined) })
  for (const [outputIndex, { item, pieces }] of items.entries()) {
    const itemId = item.id as string
    if (item.type === 'reasoning') {
      push('response.output_item.added', { output_index: outputIndex, item: { id: itemId, type: 'reasoning', summary: [] } })
      push('response.output_item.done', { output_index: outputIndex, item })
    } else if (item.type === 'message') {
      const text = pieces.join('')
      push('response.output_item.added', { output_index: outputIndex, item: messageItem(itemId, '', 'in_progress') })
      push('response.content_part.added', { item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } })
      for (const delta of pieces) push('response.output_text.delta', { item_id: itemId, output_index: outputIndex, content_index: 0, delta, logprobs: [] })
      if (plan.kind === 'failure') {
        push('error', { code: 'server_error', message: plan.message, param: null })
        return events
      }
      push('response.output_text.done', { item_id: itemId, output_index: outputIndex, content_index: 0, text, logprobs: [] })
      push('response.content_part.done', { item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: 'output_text', text, annotations: [], logprobs: [] } })
      push('response.output_item.done', { output_index: outputIndex, item })
    } else if (item.type === 'function_call') {
      push('response.output_item.added', { output_index: outputIndex, item: { ...item, status: 'in_progress', arguments: '' } })
      for (const delta of pieces) push('response.function_call_arguments.delta', { item_id: itemId, output_index: outputIndex, delta })
      push('response.function_call_arguments.done', { item_id: itemId, output_index: outputIndex, name: item.name, arguments: item.arguments })
      push('response.output_item.done', { output_index: outputIndex, item })
    }
  }
  push('response.completed', { response: responseObject(id, req, items.map((p) => p.item), 'completed', plan.kind === 'failure' ? undefined : plan.usage) })
  return events
}

/** A conformance scenario (all but errors, which the fake answers itself) as a plan. */
export function planOf(s: Exclude<Scenario, { kind: 'error' }>): ResponsePlan {
  const pieceSize = s.pieceSize
  if (s.kind === 'stream_error') return { kind: 'failure', pieces: piecesOf(s.text, 5), message: s.message, pieceSize }
  const usage = { input: s.usage.prompt, output: s.usage.completion, reasoning: s.usage.reasoning, cached: s.usage.cached }
  const extras = { usage, reasoning: s.reasoning, pieceSize }
  if (s.kind === 'text') return { kind: 'text', pieces: piecesOf(s.text, 5), ...extras }
  const [first, ...rest] = callsOf(s).map((c) => ({ name: c.name, argPieces: piecesOf(JSON.stringify(c.args), 4), callId: c.id }))
  return { kind: 'function_call', ...first!, text: s.text, parallel: rest, ...extras }
}

/** The request's input as stored input items (a string input is one user message). */
function inputItems(req: Json, n: number): Json[] {
  const input = typeof req.input === 'string' ? [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: req.input }] }] : ((req.input as Json[] | undefined) ?? [])
  return input.map((item, i) => ({ id: `item_fake${n}_${i}`, ...item, type: item.type ?? 'message' }))
}

const notFound = (id: string): Scripted => ({
  kind: 'json',
  status: 404,
  body: { error: { message: `Response with id '${id}' not found.`, type: 'invalid_request_error', param: null, code: null } },
})

/**
 * The Responses routes of a fake upstream, with the responses it created kept for reading back.
 * `plan` decides what the next created responses say (text by default).
 */
export function createResponsesStore() {
  const stored = new Map<string, { response: Json; input: Json[] }>()
  let count = 0
  let plan: ResponsePlan = { kind: 'text', pieces: ['Hello', ' from', ' responses'] }
  return {
    stored,
    setPlan(next: ResponsePlan) {
      plan = next
    },
    answer(req: RecordedRequest): Scripted | undefined {
      const m = /\/responses(?:\/([^/?]+)(\/input_items)?)?(?:\?(.*))?$/.exec(req.path)
      if (!m) return undefined
      const [, rawId, items, query] = m
      if (!rawId) {
        if (req.method !== 'POST') return undefined
        const n = ++count
        const id = `resp_fake${n}`
        const body = req.body as Json
        const events = responseEvents(id, body, plan, n)
        // a failure plan's stream ends in an error event; its JSON answer is the text, completed
        const final = (events.at(-1)!.response as Json | undefined) ?? responseObject(id, body, planOutput(body, plan, n), 'completed', undefined)
        if (body.store !== false) stored.set(id, { response: final, input: inputItems(body, n) })
        return body.stream ? { kind: 'events', events, pieceSize: plan.pieceSize } : { kind: 'json', body: final }
      }
      const id = decodeURIComponent(rawId)
      const found = stored.get(id)
      if (!found) return notFound(id)
      if (items && req.method === 'GET') {
        const params = new URLSearchParams(query ?? '')
        const ordered = params.get('order') === 'asc' ? found.input : [...found.input].reverse()
        const data = ordered.slice(0, Number(params.get('limit') ?? 20))
        return { kind: 'json', body: { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: data.length < ordered.length } }
      }
      if (req.method === 'GET') return { kind: 'json', body: found.response }
      if (req.method === 'DELETE') {
        stored.delete(id)
        return { kind: 'json', body: { id, object: 'response', deleted: true } }
      }
      return undefined
    },
  }
}
