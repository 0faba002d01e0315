/**
 * A Responses request as the gateway's chat-completions request, for providers that do not speak the
 * Responses API (Anthropic, Ollama, the mock, OpenAI-compatible hosts).
 *
 * Input items become chat messages in order:
 * - `instructions` is a system message first; `system` and `developer` messages become system messages
 *   (every chat upstream knows that role; OpenAI itself treats it as developer for reasoning models).
 * - consecutive function_call / custom_tool_call items, and an assistant message right before them, are
 *   one assistant message with tool_calls; their outputs are tool messages.
 * - a `reasoning` item goes on the assistant message of its turn: its summary as `reasoning`, and the
 *   thinking blocks this proxy put in `encrypted_content` as `thinking_blocks`. Encrypted content this
 *   proxy did not make (OpenAI's) cannot be read: it is dropped and reported.
 * - input_image takes an image_url (https or data URL); an OpenAI file id cannot be read upstream (400).
 *   input_file takes inline `file_data` (a chat `file` part; the adapter decides whether its upstream reads
 *   it); `file_id` and `file_url` are refused with a 400 naming them.
 * - item references are looked up in the earlier items (previous_response_id), then by `resolveItem` (the
 *   client's other stored responses).
 * - items of OpenAI-run tools (web_search_call, mcp_call…), compaction items and other types with no chat
 *   form are dropped and reported as `input[i]:<type>`.
 *
 * Parameters: max_output_tokens -> max_completion_tokens, reasoning.effort -> reasoning_effort (xhigh and
 * max as high), text.format -> response_format, text.verbosity -> verbosity, user (or safety_identifier)
 * -> user; temperature, top_p, parallel_tool_calls as they are. Honoured by the proxy itself, not sent:
 * stream, store, previous_response_id, metadata, include 'reasoning.encrypted_content'. Ignored without a
 * report (bookkeeping that does not change the answer): client_metadata, prompt_cache_key,
 * prompt_cache_retention, stream_options, truncation 'disabled', service_tier 'auto'/'default'. Reported as
 * dropped: any other include value, truncation 'auto', another service_tier, top_logprobs, max_tool_calls,
 * context_management, moderation and any parameter this module does not know. Refused (400): background,
 * conversation, prompt (they need OpenAI's stored state).
 */
import { invalidRequest, ProxyError } from '../../core/errors.js'
import type { ChatMessage, ChatRequest } from '../../core/openai-schema.js'
import type { ReasoningEffort, ThinkingBlock } from '../../core/reasoning.js'
import {
  itemType,
  type ContentPart,
  type CustomToolCallItem,
  type CustomToolCallOutputItem,
  type FunctionCallItem,
  type FunctionCallOutputItem,
  type InputFile,
  type InputImage,
  type InputItem,
  type MessageItem,
  type ReasoningItem,
  type ResponsesRequest,
} from '../../core/responses-schema.js'
import { decodeThinking } from './thinking-codec.js'
import { chatToolName, customArguments, mapTools } from './tools.js'

export interface TranslateOptions {
  /** the items of the earlier turns (previous_response_id): their inputs and outputs, oldest first */
  history?: readonly InputItem[]
  /** finds an item by id for an item_reference that is not in the history */
  resolveItem?: (id: string) => InputItem | undefined
}

export interface TranslatedRequest {
  chat: ChatRequest
  /** parameters and items left out, for x-proxy-dropped-params */
  dropped: string[]
}

/** Parameters read below, or honoured or ignored on purpose; any other one with a value is reported. */
const KNOWN = new Set([
  'model', 'input', 'instructions', 'tools', 'tool_choice', 'parallel_tool_calls', 'max_output_tokens', 'temperature', 'top_p',
  'reasoning', 'text', 'stream', 'store', 'previous_response_id', 'include', 'metadata', 'user', 'safety_identifier',
  'prompt_cache_key', 'prompt_cache_retention', 'truncation', 'service_tier', 'client_metadata', 'stream_options',
  'background', 'conversation', 'prompt', 'top_logprobs',
])
const REFUSED = ['background', 'conversation', 'prompt'] as const
const SILENT_INCLUDE = new Set(['reasoning.encrypted_content'])

export function toChatRequest(req: ResponsesRequest, opts: TranslateOptions = {}): TranslatedRequest {
  const r = req as ResponsesRequest & Record<string, unknown>
  for (const param of REFUSED) {
    if (r[param] != null && r[param] !== false) {
      throw invalidRequest(`'${param}' needs state that only OpenAI keeps; this model's provider is called through chat completions. Remove it, or route the model to an OpenAI or Azure provider.`, param, 'unsupported_parameter')
    }
  }
  const dropped: string[] = []
  reportDropped(r, dropped)

  const history = opts.history ?? []
  const resolve = (id: string) => history.find((item) => (item as { id?: unknown }).id === id) ?? opts.resolveItem?.(id)
  const builder = new MessageList(resolve, dropped)
  if (req.instructions) builder.messages.push({ role: 'system', content: req.instructions })
  history.forEach((item, i) => builder.add(item, `previous_response_id[${i}]`))
  if (typeof req.input === 'string') builder.messages.push({ role: 'user', content: req.input })
  else (req.input ?? []).forEach((item, i) => builder.add(item, `input[${i}]`))
  if (builder.messages.length === 0) {
    const skipped = dropped.filter((d) => d.startsWith('input['))
    if (skipped.length === 0) throw invalidRequest("Missing required parameter: 'input'.", 'input', 'missing_required_parameter')
    throw invalidRequest(`Invalid value for 'input': this model's provider is called through chat completions, which has no form for any of its items (${skipped.join(', ')}).`, 'input', 'invalid_value')
  }

  const chat: ChatRequest = { model: req.model, messages: builder.messages, ...mapTools(req, dropped) }
  if (req.stream) {
    chat.stream = true
    chat.stream_options = { include_usage: true }
  }
  if (req.max_output_tokens != null) chat.max_completion_tokens = req.max_output_tokens
  if (req.temperature != null) chat.temperature = req.temperature
  if (req.top_p != null) chat.top_p = req.top_p
  const effort = req.reasoning?.effort
  if (effort) chat.reasoning_effort = (effort === 'xhigh' || effort === 'max' ? 'high' : effort) satisfies ReasoningEffort
  const user = req.user ?? req.safety_identifier
  if (user) chat.user = user
  const format = req.text?.format
  if (format?.type === 'json_object') chat.response_format = { type: 'json_object' }
  else if (format?.type === 'json_schema') {
    const { name, schema, strict, description } = format
    chat.response_format = { type: 'json_schema', json_schema: { name, schema, ...(strict != null ? { strict } : {}), ...(description ? { description } : {}) } }
  } else if (format && format.type !== 'text') {
    throw invalidRequest(`Invalid value for 'text.format.type': '${format.type}' has no chat-completions form; use text, json_object or json_schema.`, 'text.format.type', 'unsupported_parameter')
  }
  if (req.text?.verbosity) chat.verbosity = req.text.verbosity
  return { chat, dropped }
}

function reportDropped(req: ResponsesRequest & Record<string, unknown>, dropped: string[]): void {
  for (const value of req.include ?? []) if (!SILENT_INCLUDE.has(value)) dropped.push(`include:${value}`)
  if (req.truncation === 'auto') dropped.push('truncation')
  if (req.service_tier && req.service_tier !== 'auto' && req.service_tier !== 'default') dropped.push('service_tier')
  if (req.top_logprobs) dropped.push('top_logprobs')
  for (const [param, value] of Object.entries(req)) {
    if (!KNOWN.has(param) && value != null) dropped.push(param)
  }
}

type AssistantMessage = Extract<ChatMessage, { role: 'assistant' }> & { reasoning?: string; thinking_blocks?: ThinkingBlock[] }
type ToolCall = NonNullable<AssistantMessage['tool_calls']>[number]
type ChatPart = { type: string; [k: string]: unknown }

/** Builds the chat messages item by item; reasoning waits for the assistant message of its turn. */
class MessageList {
  readonly messages: ChatMessage[] = []
  #reasoning: { text: string[]; blocks: ThinkingBlock[] } | null = null
  #resolving = new Set<string>()
  readonly resolve: (id: string) => InputItem | undefined
  readonly dropped: string[]

  constructor(resolve: (id: string) => InputItem | undefined, dropped: string[]) {
    this.resolve = resolve
    this.dropped = dropped
  }

  add(item: InputItem, at: string): void {
    const type = itemType(item)
    switch (type) {
      case 'message':
        return this.#message(item as MessageItem, at)
      case 'function_call': {
        const call = item as FunctionCallItem
        return this.#toolCall({ id: call.call_id, type: 'function', function: { name: chatToolName(call.name, call.namespace), arguments: call.arguments } })
      }
      case 'custom_tool_call': {
        const call = item as CustomToolCallItem
        return this.#toolCall({ id: call.call_id, type: 'function', function: { name: chatToolName(call.name, call.namespace), arguments: customArguments(call.input) } })
      }
      case 'function_call_output':
      case 'custom_tool_call_output': {
        const { call_id, output } = item as FunctionCallOutputItem | CustomToolCallOutputItem
        this.#push({ role: 'tool', tool_call_id: call_id, content: typeof output === 'string' ? output : output.map((p, j) => chatPart(p, `${at}.output[${j}]`)) })
        return
      }
      case 'reasoning':
        return this.#reasoningItem(item as ReasoningItem, at)
      case 'item_reference':
        return this.#reference((item as { id: string }).id, at)
      default:
        this.dropped.push(`${at}:${type}`)
    }
  }

  #message(item: MessageItem, at: string): void {
    const content = typeof item.content === 'string' ? item.content : contentOf(item.content.map((p, j) => chatPart(p, `${at}.content[${j}]`)))
    if (item.role === 'assistant') {
      const message: AssistantMessage = { role: 'assistant', content }
      this.#takeReasoning(message)
      this.messages.push(message)
    } else {
      this.#push({ role: item.role === 'developer' ? 'system' : item.role, content })
    }
  }

  #toolCall(call: ToolCall): void {
    const last = this.messages.at(-1)
    if (last?.role === 'assistant') {
      ;(last.tool_calls ??= []).push(call)
      return
    }
    const message: AssistantMessage = { role: 'assistant', content: null, tool_calls: [call] }
    this.#takeReasoning(message)
    this.messages.push(message)
  }

  #reasoningItem(item: ReasoningItem, at: string): void {
    const text = [...(item.summary ?? []), ...(item.content ?? [])].map((p) => p.text ?? '').filter((t) => t !== '')
    let blocks: ThinkingBlock[] = []
    if (item.encrypted_content) {
      const decoded = decodeThinking(item.encrypted_content)
      if (decoded) blocks = decoded
      else this.dropped.push(`${at}.encrypted_content`)
    }
    // a reasoning item after the turn's assistant message (interleaved thinking) belongs to that message
    const last = this.messages.at(-1)
    if (last?.role === 'assistant') return addReasoning(last as AssistantMessage, text, blocks)
    this.#reasoning ??= { text: [], blocks: [] }
    this.#reasoning.text.push(...text)
    this.#reasoning.blocks.push(...blocks)
  }

  #takeReasoning(message: AssistantMessage): void {
    if (!this.#reasoning) return
    addReasoning(message, this.#reasoning.text, this.#reasoning.blocks)
    this.#reasoning = null
  }

  /** A user, system or tool message ends the turn: reasoning with no assistant message after it is left out. */
  #push(message: ChatMessage): void {
    this.#reasoning = null
    this.messages.push(message)
  }

  #reference(id: string, at: string): void {
    const item = this.#resolving.has(id) ? undefined : this.resolve(id)
    if (!item) {
      throw new ProxyError({ status: 404, type: 'invalid_request_error', code: 'item_not_found', param: at, message: `Item '${id}' (${at}) was not found among the items of this conversation.` })
    }
    this.#resolving.add(id)
    this.add(item, at)
    this.#resolving.delete(id)
  }
}

function addReasoning(message: AssistantMessage, text: string[], blocks: ThinkingBlock[]): void {
  if (text.length > 0) message.reasoning = message.reasoning ? `${message.reasoning}\n\n${text.join('\n\n')}` : text.join('\n\n')
  if (blocks.length > 0) message.thinking_blocks = [...(message.thinking_blocks ?? []), ...blocks]
}

/** Parts as a string when they are one piece of text, else as chat parts. */
function contentOf(parts: ChatPart[]): string | ChatPart[] {
  const only = parts.length === 1 ? parts[0]! : null
  return only?.type === 'text' ? (only.text as string) : parts
}

function chatPart(part: ContentPart, at: string): ChatPart {
  switch (part.type) {
    case 'input_text':
    case 'output_text':
      return { type: 'text', text: part.text }
    case 'refusal':
      return { type: 'text', text: part.refusal }
    case 'input_image': {
      const image = part as InputImage
      if (!image.image_url) {
        const param = image.file_id ? `${at}.file_id` : `${at}.image_url`
        throw invalidRequest(`Invalid value for '${param}': this model's provider takes images as an image_url (https:// or a data: URL); OpenAI file ids cannot be read there.`, param, image.file_id ? 'unsupported_parameter' : 'missing_required_parameter')
      }
      // chat has no 'original' detail; the nearest is 'high'
      const detail = image.detail === 'original' ? 'high' : image.detail
      return { type: 'image_url', image_url: { url: image.image_url, ...(detail ? { detail } : {}) } }
    }
    case 'input_file': {
      const file = part as InputFile
      if (typeof file.file_data !== 'string') {
        const param = file.file_id ? `${at}.file_id` : file.file_url ? `${at}.file_url` : `${at}.file_data`
        throw invalidRequest(`Invalid value for '${param}': this model's provider takes files inline only: send file_data as a data: URL (OpenAI file ids and file URLs cannot be read there).`, param, 'unsupported_parameter')
      }
      return { type: 'file', file: { file_data: file.file_data, ...(file.filename ? { filename: file.filename } : {}) } }
    }
    default:
      throw invalidRequest(`Invalid value for '${at}.type': content of type '${part.type}' has no chat-completions form.`, `${at}.type`, 'unsupported_parameter')
  }
}
