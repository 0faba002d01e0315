/**
 * The Response object and its output items, as this proxy builds them for translated providers (the JSON
 * answer and the stream share these builders). The object echoes the request parameters a Response
 * carries, with OpenAI's defaults where the client sent none.
 */
import { randomBase62, timeOrderedId } from '../../core/ids.js'
import type { FinishReason } from '../../core/openai-schema.js'
import type { NamespaceTool, ResponsesRequest, ResponsesTool } from '../../core/responses-schema.js'
import type { ResponsesUsage } from './usage.js'

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete'

export interface OutputTextPart {
  type: 'output_text'
  text: string
  annotations: unknown[]
  logprobs: unknown[]
}
export interface RefusalPart {
  type: 'refusal'
  refusal: string
}
export interface MessageOutput {
  id: string
  type: 'message'
  status: ItemStatus
  role: 'assistant'
  content: Array<OutputTextPart | RefusalPart>
}
export interface ReasoningOutput {
  id: string
  type: 'reasoning'
  summary: Array<{ type: 'summary_text'; text: string }>
  encrypted_content?: string | null
}
export interface FunctionCallOutput {
  id: string
  type: 'function_call'
  status: ItemStatus
  call_id: string
  name: string
  namespace?: string
  arguments: string
}
export interface CustomToolCallOutput {
  id: string
  type: 'custom_tool_call'
  call_id: string
  name: string
  namespace?: string
  input: string
}
export type OutputItem = MessageOutput | ReasoningOutput | FunctionCallOutput | CustomToolCallOutput

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed'

export interface ResponseObject {
  id: string
  object: 'response'
  created_at: number
  status: ResponseStatus
  completed_at: number | null
  error: { code: string; message: string } | null
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null
  model: string
  output: OutputItem[]
  output_text?: string
  /** absent until known (the spec does not allow null) */
  usage?: ResponsesUsage
  [param: string]: unknown
}

export interface ResponseOptions {
  /** the Response id (`resp_…`); a new one by default */
  id?: string
  /** Unix seconds; now by default */
  createdAt?: number
}

const RESPONSE_PREFIX = 'resp_'
const ITEM_OF_RESPONSE = /^(?:msg|rs|fc|ctc|call)_([0-9A-Za-z]{32})[0-9A-Za-z]{8}$/

/**
 * `resp_` and 32 base62 characters, time-ordered: every stored response's id is the key of the
 * responses table, where random ids scattered each insert over the whole index (docs/performance.md).
 */
export const newResponseId = (): string => timeOrderedId(RESPONSE_PREFIX, 32)

/**
 * An item's id: with the response it belongs to, `<prefix>_` + the response id's 32 characters + 8 random
 * ones, so that an item_reference sent without previous_response_id finds its stored response with one
 * read (responseIdOfItem). Without one (a call_id), 32 random characters.
 */
export const newItemId = (prefix: 'msg' | 'rs' | 'fc' | 'ctc' | 'call', responseId?: string): string =>
  responseId ? `${prefix}_${responseId.slice(RESPONSE_PREFIX.length)}${randomBase62(8)}` : `${prefix}_${randomBase62(32)}`

/** The id of the response an item id made here belongs to; null for any other id. */
export function responseIdOfItem(itemId: string): string | null {
  const m = ITEM_OF_RESPONSE.exec(itemId)
  return m ? RESPONSE_PREFIX + m[1] : null
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** A Response with no output yet (status in_progress) that echoes the request's parameters. */
export function responseShell(req: ResponsesRequest, opts: ResponseOptions = {}): ResponseObject {
  return {
    id: opts.id ?? newResponseId(),
    object: 'response',
    created_at: opts.createdAt ?? nowSeconds(),
    status: 'in_progress',
    background: false,
    completed_at: null,
    error: null,
    incomplete_details: null,
    instructions: req.instructions ?? null,
    max_output_tokens: req.max_output_tokens ?? null,
    max_tool_calls: req.max_tool_calls ?? null,
    model: req.model,
    output: [],
    parallel_tool_calls: req.parallel_tool_calls ?? true,
    previous_response_id: req.previous_response_id ?? null,
    prompt_cache_key: req.prompt_cache_key ?? null,
    reasoning: { effort: req.reasoning?.effort ?? null, summary: req.reasoning?.summary ?? null },
    safety_identifier: req.safety_identifier ?? null,
    service_tier: 'default',
    store: req.store ?? true,
    temperature: req.temperature ?? 1,
    text: { format: req.text?.format ?? { type: 'text' }, verbosity: req.text?.verbosity ?? 'medium' },
    tool_choice: req.tool_choice ?? 'auto',
    tools: (req.tools ?? []).map(echoTool),
    top_logprobs: req.top_logprobs ?? 0,
    top_p: req.top_p ?? 1,
    truncation: req.truncation ?? 'disabled',
    ...(req.user !== undefined ? { user: req.user } : {}),
    metadata: req.metadata ?? {},
  }
}

/** A function tool as a Response lists it: strict, parameters and description always present (null when not sent). */
function echoTool(tool: ResponsesTool): ResponsesTool {
  if (tool.type === 'namespace') return { ...tool, tools: (tool as NamespaceTool).tools.map(echoTool) }
  if (tool.type !== 'function') return tool
  return { ...tool, description: tool.description ?? null, parameters: tool.parameters ?? null, strict: tool.strict ?? null }
}

/** Marks a Response finished by the chat finish reason: cut off (length, content filter) means incomplete. */
export function finish(response: ResponseObject, reason: FinishReason | null): void {
  const cut = reason === 'length' ? 'max_output_tokens' : reason === 'content_filter' ? 'content_filter' : null
  response.status = cut ? 'incomplete' : 'completed'
  response.incomplete_details = cut ? { reason: cut } : null
  response.completed_at = cut ? null : nowSeconds()
}

/** The SDKs' `output_text`: the text of every output_text part, in order. */
export function outputText(output: readonly OutputItem[]): string {
  let text = ''
  for (const item of output) {
    if (item.type !== 'message') continue
    for (const part of item.content) if (part.type === 'output_text') text += part.text
  }
  return text
}
