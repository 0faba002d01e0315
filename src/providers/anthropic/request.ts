/**
 * OpenAI request -> Anthropic Messages request. Every parameter is either mapped, refused with a 400 that
 * names it (when Anthropic cannot honour it and the client would silently get a different kind of answer),
 * or left out and reported through `warn` (the server lists those in `x-proxy-dropped-params`).
 */
import { invalidRequest, type ProxyError } from '../../core/errors.js'
import type { ChatMessage, ChatRequest, CompletionRequest } from '../../core/openai-schema.js'
import { applyThinking, thinkingBlocksOf } from './thinking.js'
import type { ContentBlock, DocumentBlock, ImageBlock, MediaSource, MessageParam, MessagesRequest, TextBlock, ToolChoiceParam, ToolResultBlock, ToolUseBlock } from './wire.js'

export interface MappingOptions {
  /** the provider's name, for error messages */
  provider: string
  model: string
  /** Anthropic requires max_tokens; used when the client sends neither max_tokens nor max_completion_tokens */
  defaultMaxTokens: number
  /** reports a parameter that was left out because Anthropic has no equivalent */
  warn: (param: string) => void
}

/** Parameters this module maps or refuses itself; any other top-level parameter with a value is reported as dropped. */
const CHAT_HANDLED = new Set([
  'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'stop', 'user',
  'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'n', 'logprobs', 'top_logprobs', 'functions', 'function_call', 'safety_identifier',
  'presence_penalty', 'frequency_penalty', 'seed', 'logit_bias', 'reasoning_effort',
])
const COMPLETION_HANDLED = new Set([
  'model', 'prompt', 'stream', 'stream_options', 'max_tokens', 'temperature', 'top_p', 'stop', 'user', 'n', 'best_of', 'echo', 'suffix', 'logprobs',
  'presence_penalty', 'frequency_penalty', 'seed', 'logit_bias',
])
/** OpenAI-side bookkeeping (stored completions) that has no effect on the answer: ignored without a report. */
const SILENT = new Set(['store', 'metadata'])

export function toMessagesRequest(req: ChatRequest, opts: MappingOptions): MessagesRequest {
  const r = req as ChatRequest & Record<string, unknown>
  if ((req.n ?? 1) > 1) throw unsupported(opts, 'n', `returns one choice per request, so 'n' must be 1 (got ${req.n}). Send ${req.n} requests instead.`)
  if (r.logprobs === true) throw unsupported(opts, 'logprobs', 'does not return token log probabilities; remove \'logprobs\'.')
  if (typeof r.top_logprobs === 'number' && r.top_logprobs > 0) throw unsupported(opts, 'top_logprobs', 'does not return token log probabilities; remove \'top_logprobs\'.')
  if (r.functions != null || r.function_call != null) {
    throw unsupported(opts, r.functions != null ? 'functions' : 'function_call', "is called through 'tools' and 'tool_choice' only; the deprecated 'functions'/'function_call' are not translated.")
  }
  const format = req.response_format?.type
  // json_object: OpenAI requires the prompt itself to ask for JSON, so Claude is already told to answer in JSON;
  // the mode's guarantee is what is lost, and that is reported. A json_schema promises output that matches a
  // schema, which Claude's plain Messages API cannot guarantee: refused rather than answered with free text.
  if (format === 'json_object') opts.warn('response_format')
  else if (format !== undefined && format !== 'text') {
    throw unsupported(opts, 'response_format', `cannot guarantee a response_format of type '${format}'. Remove it (and describe the JSON you want in the prompt), or route this model to a provider that supports it.`)
  }
  reportDropped(r, CHAT_HANDLED, opts.warn)

  const { system, messages } = mapMessages(req.messages, opts)
  const body: MessagesRequest = { model: opts.model, messages, max_tokens: req.max_completion_tokens ?? req.max_tokens ?? opts.defaultMaxTokens }
  if (system !== undefined) body.system = system
  // `safety_identifier` is OpenAI's newer name for `user`; both identify the end user to the upstream.
  applySampling(body, { ...req, user: req.user ?? (typeof r.safety_identifier === 'string' ? r.safety_identifier : undefined) })

  if (req.tools && req.tools.length > 0) {
    body.tools = req.tools.map((t) => {
      const schema = t.function.parameters ?? { properties: {} }
      return {
        name: t.function.name,
        ...(t.function.description ? { description: t.function.description } : {}),
        // Anthropic requires an object schema; OpenAI lets a function without parameters omit it.
        input_schema: 'type' in schema ? schema : { type: 'object', ...schema },
      }
    })
    const choice = toolChoice(req.tool_choice, req.parallel_tool_calls === false)
    if (choice) body.tool_choice = choice
  }
  applyThinking(body, { effort: r.reasoning_effort, clientMaxTokens: req.max_completion_tokens ?? req.max_tokens, defaultMaxTokens: opts.defaultMaxTokens, warn: opts.warn })
  return body
}

/** A legacy completion is one user turn holding the prompt. */
export function completionToMessagesRequest(req: CompletionRequest, opts: MappingOptions): MessagesRequest {
  const r = req as CompletionRequest & Record<string, unknown>
  if ((req.n ?? 1) > 1) throw unsupported(opts, 'n', `returns one choice per request, so 'n' must be 1 (got ${req.n}).`)
  if (typeof r.best_of === 'number' && r.best_of > 1) throw unsupported(opts, 'best_of', "cannot pick the best of several generations; remove 'best_of'.")
  if (req.echo === true) throw unsupported(opts, 'echo', "cannot echo the prompt; remove 'echo'.")
  if (req.suffix) throw unsupported(opts, 'suffix', "cannot complete text before a suffix (insertion); remove 'suffix'.")
  if (r.logprobs != null) throw unsupported(opts, 'logprobs', "does not return token log probabilities; remove 'logprobs'.")
  reportDropped(r, COMPLETION_HANDLED, opts.warn)

  const prompt = Array.isArray(req.prompt) && req.prompt.length === 1 && typeof req.prompt[0] === 'string' ? req.prompt[0] : req.prompt
  if (typeof prompt !== 'string') {
    throw unsupported(opts, 'prompt', 'takes one text prompt per request; token arrays and batches of prompts cannot be sent.')
  }
  const body: MessagesRequest = { model: opts.model, messages: [{ role: 'user', content: [{ type: 'text', text: prompt }] }], max_tokens: req.max_tokens ?? opts.defaultMaxTokens }
  applySampling(body, req)
  return body
}

function applySampling(body: MessagesRequest, req: { temperature?: number | null; top_p?: number | null; stop?: string | string[] | null; user?: string }): void {
  // OpenAI's temperature runs 0..2, Anthropic's 0..1 (it rejects anything above). Values above 1 are
  // clamped to 1, Anthropic's most random setting, rather than refused or rescaled: the request keeps
  // working, and 0..1 keeps the same meaning on both sides.
  if (req.temperature != null) body.temperature = Math.min(req.temperature, 1)
  if (req.top_p != null) body.top_p = req.top_p
  const stop = typeof req.stop === 'string' ? [req.stop] : (req.stop ?? [])
  if (stop.length > 0) body.stop_sequences = stop
  if (req.user) body.metadata = { user_id: req.user }
}

function reportDropped(req: Record<string, unknown>, handled: ReadonlySet<string>, warn: (param: string) => void): void {
  // Sampling knobs Anthropic lacks: leaving them out changes the sampling, not the shape of the answer.
  // Only values that would change something are reported (a zero penalty or an empty logit_bias is a no-op).
  if (typeof req.presence_penalty === 'number' && req.presence_penalty !== 0) warn('presence_penalty')
  if (typeof req.frequency_penalty === 'number' && req.frequency_penalty !== 0) warn('frequency_penalty')
  if (req.seed != null) warn('seed')
  if (req.logit_bias != null && typeof req.logit_bias === 'object' && Object.keys(req.logit_bias).length > 0) warn('logit_bias')
  for (const [param, value] of Object.entries(req)) {
    if (!handled.has(param) && !SILENT.has(param) && value != null) warn(param)
  }
}

function toolChoice(choice: ChatRequest['tool_choice'], noParallel: boolean): ToolChoiceParam | undefined {
  const parallel = noParallel ? { disable_parallel_tool_use: true } : {}
  if (choice === 'none') return { type: 'none' }
  if (choice === 'required') return { type: 'any', ...parallel }
  if (choice && typeof choice === 'object') return { type: 'tool', name: choice.function.name, ...parallel }
  if (choice === 'auto' || noParallel) return { type: 'auto', ...parallel }
  return undefined
}

function mapMessages(input: ChatMessage[], opts: MappingOptions): { system: string | TextBlock[] | undefined; messages: MessageParam[] } {
  const system: TextBlock[] = []
  const turns: MessageParam[] = []
  // Anthropic requires user and assistant turns to alternate: consecutive messages of one role are merged.
  const push = (role: MessageParam['role'], blocks: ContentBlock[]) => {
    if (blocks.length === 0) return
    const last = turns.at(-1)
    if (last?.role === role) last.content.push(...blocks)
    else turns.push({ role, content: blocks })
  }
  input.forEach((m, i) => {
    const at = `messages[${i}]`
    switch (m.role) {
      case 'system':
      case 'developer':
        for (const block of contentBlocks(m.content, `${at}.content`, opts)) {
          if (block.type !== 'text') throw invalidRequest(`Invalid value for '${at}.content': ${m.role} messages may only contain text.`, `${at}.content`, 'invalid_value')
          system.push(block)
        }
        return
      case 'user':
        return push('user', contentBlocks(m.content, `${at}.content`, opts))
      case 'assistant':
        // thinking first, as Anthropic answered it; applyThinking takes it out again when thinking is off
        return push('assistant', [
          ...thinkingBlocksOf(m.thinking_blocks, `${at}.thinking_blocks`),
          ...contentBlocks(m.content, `${at}.content`, opts),
          ...(m.tool_calls ?? []).map((call, j) => toolUse(call, `${at}.tool_calls[${j}]`)),
        ])
      case 'tool': {
        const content = typeof m.content === 'string' ? m.content : contentBlocks(m.content, `${at}.content`, opts)
        const result: ToolResultBlock = { type: 'tool_result', tool_use_id: m.tool_call_id }
        if (content.length > 0) result.content = content as ToolResultBlock['content']
        return push('user', [result])
      }
      case 'function':
        throw unsupported(opts, `${at}.role`, "takes tool results as role 'tool' messages; the deprecated role 'function' is not translated.")
    }
  })
  // In a user turn that answers tool calls, Anthropic wants the tool_result blocks before any other content;
  // in an assistant turn (two messages merged), the thinking blocks.
  for (const turn of turns) {
    const first = turn.role === 'user' ? isToolResult : isThinking
    turn.content = [...turn.content.filter(first), ...turn.content.filter((b) => !first(b))]
  }
  const cached = system.some((b) => b.cache_control !== undefined)
  return { system: system.length === 0 ? undefined : cached ? system : system.map((b) => b.text).join('\n\n'), messages: turns }
}

const isToolResult = (b: ContentBlock) => b.type === 'tool_result'
const isThinking = (b: ContentBlock) => b.type === 'thinking' || b.type === 'redacted_thinking'

function toolUse(call: { id: string; function: { name: string; arguments: string } }, at: string): ToolUseBlock {
  const param = `${at}.function.arguments`
  let input: unknown = {}
  if (call.function.arguments.trim() !== '') {
    try {
      input = JSON.parse(call.function.arguments)
    } catch {
      throw invalidRequest(`Invalid value for '${param}': the tool call arguments are not valid JSON. Anthropic takes tool input as a JSON object.`, param, 'invalid_value')
    }
  }
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw invalidRequest(`Invalid value for '${param}': the tool call arguments must be a JSON object, which is what Anthropic takes as tool input.`, param, 'invalid_value')
  }
  return { type: 'tool_use', id: call.id, name: call.function.name, input: input as Record<string, unknown> }
}

type MessageContent = ChatMessage['content']
type MediaBlock = TextBlock | ImageBlock | DocumentBlock

/** OpenAI content (a string or parts) as Anthropic blocks; empty text is left out, since Anthropic rejects empty text blocks. */
function contentBlocks(content: MessageContent, at: string, opts: MappingOptions): MediaBlock[] {
  if (content == null || content === '') return []
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  const blocks: MediaBlock[] = []
  content.forEach((raw, j) => {
    const part = raw as Record<string, unknown> & { type: string }
    const param = `${at}[${j}]`
    const cache = part.cache_control !== undefined ? { cache_control: part.cache_control } : {}
    switch (part.type) {
      case 'text':
      case 'refusal': {
        const text = part.type === 'text' ? part.text : part.refusal
        if (typeof text !== 'string') throw invalidRequest(`Missing required parameter: '${param}.${part.type}'.`, `${param}.${part.type}`, 'missing_required_parameter')
        if (text !== '') blocks.push({ type: 'text', text, ...cache })
        return
      }
      case 'image_url': {
        const image = part.image_url as { url?: unknown } | string | undefined
        const url = typeof image === 'string' ? image : image?.url
        if (typeof url !== 'string') throw invalidRequest(`Missing required parameter: '${param}.image_url.url'.`, `${param}.image_url.url`, 'missing_required_parameter')
        blocks.push({ type: 'image', source: mediaSource(url, `${param}.image_url.url`), ...cache })
        return
      }
      case 'file': {
        const file = (part.file ?? {}) as { file_data?: unknown }
        if (typeof file.file_data !== 'string') throw unsupported(opts, `${param}.file`, 'takes files inline only: send file_data as a data: URL (OpenAI file ids cannot be read by Anthropic).')
        blocks.push({ type: 'document', source: mediaSource(file.file_data, `${param}.file.file_data`), ...cache })
        return
      }
      default:
        throw unsupported(opts, `${param}.type`, `cannot take content parts of type '${part.type}'.`)
    }
  })
  return blocks
}

/** `data:<type>;base64,<data>` becomes a base64 source; an http(s) URL is passed for Anthropic to fetch. */
function mediaSource(url: string, param: string): MediaSource {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',')
    const [mediaType, ...flags] = url.slice(5, comma < 0 ? undefined : comma).split(';')
    if (comma < 0 || !mediaType || !flags.includes('base64')) {
      throw invalidRequest(`Invalid value for '${param}': a data URL must look like data:<media type>;base64,<data>.`, param, 'invalid_value')
    }
    return { type: 'base64', media_type: mediaType, data: url.slice(comma + 1) }
  }
  if (/^https?:\/\//i.test(url)) return { type: 'url', url }
  throw invalidRequest(`Invalid value for '${param}': expected an https:// URL or a base64 data: URL.`, param, 'invalid_value')
}

function unsupported(opts: MappingOptions, param: string, what: string): ProxyError {
  return invalidRequest(`Provider '${opts.provider}' (Anthropic) ${what}`, param, 'unsupported_parameter')
}
