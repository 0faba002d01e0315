/**
 * Anthropic Messages request -> the gateway's chat request, for every provider that does not speak
 * Messages natively (OpenAI, Azure, Ollama, OpenAI-compatible hosts, the mock). Each field is mapped,
 * refused with a 400 naming it (when the answer would be a different kind of answer without it), or left
 * out; what is left out and changes the answer is returned in `dropped` (the server lists it in
 * `x-proxy-dropped-params`). Left out without a report: `cache_control` anywhere (a caching hint;
 * OpenAI-shaped hosts cache prefixes on their own) and text-block `citations` in earlier turns.
 *
 * Decisions a reader cannot see from the code alone:
 * - system: the blocks are joined with a blank line into one system message. A block that is Claude
 *   Code's billing line (`x-anthropic-billing-header: …`) is left out: it is attribution for Anthropic's
 *   API, not an instruction, and it changes with every CLI version (spoiling prefix caching upstream).
 * - tool_result: each becomes a `tool` message, placed straight after the assistant's calls; the text of
 *   its blocks is joined with newlines, and `is_error: true` is kept as an `Error: ` prefix (chat tool
 *   messages have no error flag). Images and PDFs in a result cannot go in a tool message: they follow in
 *   the next user message, introduced by a line naming the call. A user turn's other blocks become that
 *   user message, after the tool messages.
 * - tools with `defer_loading: true` stay hidden from the model, as on Anthropic, until a `tool_reference`
 *   block in a tool result names them; then they are sent as ordinary functions.
 * - tools with a `type` (web_search_20250305, bash_20250124, …) are defined, and mostly run, by Anthropic
 *   itself: refused with a 400 naming the tool. So are `mcp_servers`, which Anthropic connects to.
 * - stop_sequences: OpenAI takes at most 4; the first 4 are sent and `stop_sequences` is reported.
 * - thinking: `enabled` -> reasoning_effort by its budget (budgetToEffort); `disabled`, `adaptive` -> no
 *   effort (the upstream's default); output_config.effort, when given, wins (xhigh and max -> high).
 *   `display: 'omitted'` is not honoured (reported): the reasoning text is what lets the client send it
 *   back on the next turn, which some OpenAI-compatible reasoning models need within a tool loop.
 * - metadata.user_id -> user; OpenAI takes at most 64 characters, so a longer id (Claude Code's is a JSON
 *   document) is sent as its SHA-256, which still tells users apart.
 * - max_tokens -> max_completion_tokens; max_tokens 0 (Anthropic's cache pre-warming) is refused.
 * - top_k, service_tier, context_management and any other field this module does not know: reported.
 * - A final assistant turn (prefill) is sent as an ordinary assistant message: chat models answer after it
 *   rather than continue it.
 */
import { createHash } from 'node:crypto'
import { invalidRequest, type ProxyError } from '../../core/errors.js'
import type {
  ContentBlockParam,
  DocumentBlockParam,
  ImageBlockParam,
  MessageParam,
  MessagesRequest,
  TextBlockParam,
  ToolResultContentParam,
} from '../../core/messages-schema.js'
import type { ChatMessage, ChatRequest } from '../../core/openai-schema.js'
import { budgetToEffort, type ReasoningEffort, type ThinkingBlock } from '../../core/reasoning.js'

export interface TranslatedRequest {
  request: ChatRequest
  /** parameters left out because the translated provider cannot honour them, for x-proxy-dropped-params */
  dropped: string[]
}

/** Top-level fields mapped (or refused) below; any other field with a value is reported as dropped. */
const HANDLED = new Set([
  'model', 'messages', 'system', 'max_tokens', 'stop_sequences', 'temperature', 'top_p', 'stream', 'tools', 'tool_choice',
  'thinking', 'output_config', 'output_format', 'metadata', 'mcp_servers', 'cache_control',
])

const OPENAI_MAX_STOPS = 4
const OPENAI_MAX_USER_CHARS = 64
const BILLING_LINE = 'x-anthropic-billing-header:'

type ContentPart = { type: string; [k: string]: unknown }
type AssistantMessage = Extract<ChatMessage, { role: 'assistant' }>

export function toChatRequest(req: MessagesRequest): TranslatedRequest {
  const dropped = new Set<string>()
  for (const [field, value] of Object.entries(req)) if (!HANDLED.has(field) && value != null) dropped.add(field)
  if (req.max_tokens === 0) {
    throw unsupported('max_tokens', 'max_tokens 0 (filling the prompt cache without an answer) is an Anthropic feature.')
  }
  if (Array.isArray(req.mcp_servers) && req.mcp_servers.length > 0) {
    throw unsupported('mcp_servers', 'MCP servers in a request are connected to by Anthropic itself.')
  }

  const loadedTools = new Set<string>()
  const messages: ChatMessage[] = []
  const system = systemText(req.system)
  if (system) messages.push({ role: 'system', content: system })
  req.messages.forEach((m, i) => messages.push(...toChatMessages(m, `messages[${i}]`, loadedTools, dropped)))

  const request: ChatRequest = { model: req.model, messages, max_completion_tokens: req.max_tokens }
  if (req.stream) {
    request.stream = true
    request.stream_options = { include_usage: true }
  }
  if (req.temperature != null) request.temperature = req.temperature
  if (req.top_p != null) request.top_p = req.top_p
  const stops = req.stop_sequences ?? []
  if (stops.length > 0) request.stop = stops.slice(0, OPENAI_MAX_STOPS)
  if (stops.length > OPENAI_MAX_STOPS) dropped.add('stop_sequences')
  const user = req.metadata?.user_id
  if (user) request.user = user.length <= OPENAI_MAX_USER_CHARS ? user : createHash('sha256').update(user).digest('hex')

  const effort = reasoningEffort(req, dropped)
  if (effort) request.reasoning_effort = effort
  const format = req.output_config?.format ?? req.output_format
  if (format) {
    if (format.type !== 'json_schema') throw unsupported('output_config.format.type', `An output format of type '${format.type}' cannot be translated.`)
    request.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: format.schema, strict: true } }
  }
  applyTools(request, req, loadedTools, dropped)
  return { request, dropped: [...dropped] }
}

function systemText(system: MessagesRequest['system']): string {
  if (system == null) return ''
  if (typeof system === 'string') return system
  return system
    .filter((b) => !b.text.startsWith(BILLING_LINE))
    .map((b) => b.text)
    .join('\n\n')
}

function toChatMessages(m: MessageParam, at: string, loadedTools: Set<string>, dropped: Set<string>): ChatMessage[] {
  if (m.role === 'system') return [{ role: 'system', content: typeof m.content === 'string' ? m.content : m.content.map((b) => b.text).join('\n\n') }]
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }]
  return m.role === 'assistant' ? [assistantMessage(m.content, at)] : userMessages(m.content, at, loadedTools, dropped)
}

function assistantMessage(blocks: ContentBlockParam[], at: string): ChatMessage {
  let text = ''
  const calls: NonNullable<AssistantMessage['tool_calls']> = []
  const thinking: ThinkingBlock[] = []
  const reasoning: string[] = []
  blocks.forEach((block, j) => {
    switch (block.type) {
      case 'text':
        text += block.text
        return
      case 'tool_use':
        calls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input) } })
        return
      case 'thinking':
        thinking.push({ type: 'thinking', thinking: block.thinking, signature: block.signature })
        if (block.thinking) reasoning.push(block.thinking)
        return
      case 'redacted_thinking':
        thinking.push({ type: 'redacted_thinking', data: block.data })
        return
      default:
        throw unsupportedBlock(block, `${at}.content[${j}]`)
    }
  })
  const message: AssistantMessage = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text }
  if (calls.length > 0) message.tool_calls = calls
  if (thinking.length > 0) message.thinking_blocks = thinking
  if (reasoning.length > 0) message.reasoning = reasoning.join('\n\n')
  return message
}

/** Tool results first (as `tool` messages, in the order given), then one user message with everything else. */
function userMessages(blocks: ContentBlockParam[], at: string, loadedTools: Set<string>, dropped: Set<string>): ChatMessage[] {
  const out: ChatMessage[] = []
  const parts: ContentPart[] = []
  blocks.forEach((block, j) => {
    const param = `${at}.content[${j}]`
    switch (block.type) {
      case 'tool_result': {
        const attachments: ContentPart[] = []
        const texts: string[] = []
        if (typeof block.content === 'string') texts.push(block.content)
        else {
          block.content?.forEach((item, k) => {
            const itemParam = `${param}.content[${k}]`
            if (item.type === 'tool_reference') {
              loadedTools.add(item.tool_name)
              texts.push(`Tool '${item.tool_name}' is now available.`)
              return
            }
            for (const part of mediaParts(item, itemParam, dropped)) {
              if (part.type === 'text') texts.push(part.text as string)
              else attachments.push(part)
            }
          })
        }
        const text = texts.join('\n')
        out.push({ role: 'tool', tool_call_id: block.tool_use_id, content: block.is_error ? `Error: ${text}` : text })
        if (attachments.length > 0) parts.push({ type: 'text', text: `Attachments of the result of tool call ${block.tool_use_id}:` }, ...attachments)
        return
      }
      case 'thinking':
      case 'redacted_thinking':
        // Only an assistant turn carries thinking; Anthropic ignores it elsewhere, and so does this.
        return
      case 'tool_use':
        throw invalidRequest(`Invalid value for '${param}': tool_use blocks belong in assistant turns.`, param, 'invalid_value')
      default:
        parts.push(...mediaParts(block, param, dropped))
    }
  })
  if (parts.length > 0) out.push({ role: 'user', content: parts })
  return out
}

/** A text, image, document or search-result block as chat content parts. */
function mediaParts(block: ContentBlockParam | ToolResultContentParam, param: string, dropped: Set<string>): ContentPart[] {
  switch (block.type) {
    case 'text':
      return [textPart(block.text)]
    case 'image':
      return [imagePart(block, param)]
    case 'document':
      return documentParts(block, param, dropped)
    case 'search_result':
      return [textPart([block.title, block.source, ...block.content.map((b) => b.text)].join('\n'))]
    default:
      throw unsupportedBlock(block, param)
  }
}

const textPart = (text: string): ContentPart => ({ type: 'text', text })

function imagePart(block: ImageBlockParam, param: string): ContentPart {
  const source = block.source
  switch (source.type) {
    case 'base64':
      return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } }
    case 'url':
      return { type: 'image_url', image_url: { url: source.url } }
    default:
      throw unsupportedSource(source.type, `${param}.source`)
  }
}

function documentParts(block: DocumentBlockParam, param: string, dropped: Set<string>): ContentPart[] {
  if (block.citations?.enabled) dropped.add('citations')
  const source = block.source
  const heading = [block.title, block.context].filter((s): s is string => !!s)
  switch (source.type) {
    case 'base64': {
      const name = block.title ?? 'document'
      return [{ type: 'file', file: { filename: name.toLowerCase().endsWith('.pdf') ? name : `${name}.pdf`, file_data: `data:${source.media_type};base64,${source.data}` } }]
    }
    case 'text':
      return [textPart([...heading, source.data].join('\n\n'))]
    case 'content': {
      const inner: Array<TextBlockParam | ImageBlockParam> = typeof source.content === 'string' ? [{ type: 'text', text: source.content }] : source.content
      return [
        ...(heading.length > 0 ? [textPart(heading.join('\n\n'))] : []),
        ...inner.map((b, k) => (b.type === 'image' ? imagePart(b, `${param}.source.content[${k}]`) : textPart(b.text))),
      ]
    }
    default:
      throw unsupportedSource(source.type, `${param}.source`)
  }
}

function reasoningEffort(req: MessagesRequest, dropped: Set<string>): Exclude<ReasoningEffort, 'none'> | undefined {
  const thinking = req.thinking
  if (thinking && 'display' in thinking && thinking.display === 'omitted') dropped.add('thinking.display')
  const effort = req.output_config?.effort
  if (effort === 'low' || effort === 'medium' || effort === 'high') return effort
  if (effort === 'xhigh' || effort === 'max') return 'high'
  if (effort != null) dropped.add('output_config.effort')
  return thinking?.type === 'enabled' ? budgetToEffort(thinking.budget_tokens) : undefined
}

function applyTools(request: ChatRequest, req: MessagesRequest, loadedTools: ReadonlySet<string>, dropped: Set<string>): void {
  const tools: NonNullable<ChatRequest['tools']> = []
  req.tools?.forEach((tool, i) => {
    if (tool.type != null && tool.type !== 'custom') {
      throw unsupported(`tools[${i}]`, `Tool '${tool.name}' (type '${tool.type}') is defined by Anthropic, and only Anthropic can serve it.`)
    }
    if (tool.defer_loading && !loadedTools.has(tool.name)) return
    if (tool.input_examples != null) dropped.add('tools.input_examples')
    tools.push({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description ? { description: tool.description } : {}),
        parameters: tool.input_schema,
        ...(tool.strict != null ? { strict: tool.strict } : {}),
      },
    })
  })
  // OpenAI refuses tool_choice and parallel_tool_calls without tools.
  if (tools.length === 0) return
  request.tools = tools
  const choice = req.tool_choice
  if (!choice) return
  switch (choice.type) {
    case 'auto':
      request.tool_choice = 'auto'
      break
    case 'any':
      request.tool_choice = 'required'
      break
    case 'tool':
      request.tool_choice = { type: 'function', function: { name: choice.name } }
      break
    case 'none':
      request.tool_choice = 'none'
      return
    default:
      throw unsupported('tool_choice.type', `A tool_choice of type '${(choice as { type: string }).type}' cannot be translated.`)
  }
  if (choice.disable_parallel_tool_use) request.parallel_tool_calls = false
}

function unsupported(param: string, what: string): ProxyError {
  return invalidRequest(`${what} This model is served by a provider that does not speak Anthropic's Messages API; remove '${param}' or route the model to an Anthropic provider.`, param, 'unsupported_parameter')
}

const unsupportedBlock = (block: { type: string }, param: string) =>
  unsupported(`${param}.type`, `Content blocks of type '${block.type}' cannot be translated.`)

const unsupportedSource = (type: string, param: string) =>
  unsupported(`${param}.type`, `A source of type '${type}' cannot be translated (only base64 data and, for images, URLs can).`)
