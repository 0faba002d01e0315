/**
 * OpenAI's Responses API as the fake upstreams speak it: the Response object, its output items, and the
 * event sequence of a streamed response, shaped after the spec's schemas and examples
 * (shared/testdata/openai/openapi.yaml: Response, ResponseUsage, OutputMessage, FunctionToolCall,
 * ReasoningItem, Response*Event). Every event carries a sequence_number, counted from 0 per stream.
 */
import type { RecordedRequest, Scripted } from './openai-upstream.js'

type Json = Record<string, unknown>
type Usage = { input: number; output: number; reasoning?: number; cached?: number }

/** What the model "answers": text, or a function call whose arguments stream in pieces. */
export type ResponsePlan =
  | { kind: 'text'; pieces: string[]; usage?: Usage }
  | { kind: 'function_call'; name: string; argPieces: string[]; callId?: string; usage?: Usage }

const FAKE_ENCRYPTED = 'gAAAAABfakeEncryptedReasoning0123456789=='

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

export function reasoningItem(id: string): Json {
  return { id, type: 'reasoning', summary: [], encrypted_content: FAKE_ENCRYPTED }
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

/** The completed output for a plan. */
export function planOutput(req: Json, plan: ResponsePlan, n: number): Json[] {
  const out: Json[] = wantsEncryptedReasoning(req) ? [reasoningItem(`rs_fake${n}`)] : []
  if (plan.kind === 'text') out.push(messageItem(`msg_fake${n}`, plan.pieces.join('')))
  else out.push(functionCallItem(`fc_fake${n}`, plan.name, plan.argPieces.join(''), plan.callId ?? `call_fake${n}`))
  return out
}

/** The event sequence of a streamed response, ending with response.completed. */
export function responseEvents(id: string, req: Json, plan: ResponsePlan, n: number): Array<{ type: string } & Json> {
  const events: Array<{ type: string } & Json> = []
  const push = (type: string, fields: Json) => events.push({ type, ...fields, sequence_number: events.length })
  const output = planOutput(req, plan, n)
  push('response.created', { response: responseObject(id, req, [], 'in_progress', undefined) })
  push('response.in_progress', { response: responseObject(id, req, [], 'in_progress', undefined) })
  output.forEach((item, outputIndex) => {
    const itemId = item.id as string
    if (item.type === 'reasoning') {
      push('response.output_item.added', { output_index: outputIndex, item: { id: itemId, type: 'reasoning', summary: [] } })
      push('response.output_item.done', { output_index: outputIndex, item })
    } else if (item.type === 'message' && plan.kind === 'text') {
      const text = plan.pieces.join('')
      push('response.output_item.added', { output_index: outputIndex, item: messageItem(itemId, '', 'in_progress') })
      push('response.content_part.added', { item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } })
      for (const delta of plan.pieces) push('response.output_text.delta', { item_id: itemId, output_index: outputIndex, content_index: 0, delta, logprobs: [] })
      push('response.output_text.done', { item_id: itemId, output_index: outputIndex, content_index: 0, text, logprobs: [] })
      push('response.content_part.done', { item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: 'output_text', text, annotations: [], logprobs: [] } })
      push('response.output_item.done', { output_index: outputIndex, item })
    } else if (item.type === 'function_call' && plan.kind === 'function_call') {
      push('response.output_item.added', { output_index: outputIndex, item: { ...item, status: 'in_progress', arguments: '' } })
      for (const delta of plan.argPieces) push('response.function_call_arguments.delta', { item_id: itemId, output_index: outputIndex, delta })
      push('response.function_call_arguments.done', { item_id: itemId, output_index: outputIndex, name: item.name, arguments: item.arguments })
      push('response.output_item.done', { output_index: outputIndex, item })
    }
  })
  push('response.completed', { response: responseObject(id, req, output, 'completed', plan.usage) })
  return events
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
        const final = events.at(-1)!.response as Json
        if (body.store !== false) stored.set(id, { response: final, input: inputItems(body, n) })
        return body.stream ? { kind: 'events', events } : { kind: 'json', body: final }
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
