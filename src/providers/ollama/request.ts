/**
 * OpenAI request shapes -> Ollama's native ones. Sampling parameters go into `options` (Modelfile names),
 * images into `images` (bare base64), tool-call arguments from JSON strings into objects, and tool results
 * get the `tool_name` Ollama's templates use. What Ollama cannot do is refused here with a 400 naming the
 * parameter, rather than silently answered differently (n > 1, image URLs, token-array prompts).
 */
import { invalidRequest } from '../../core/errors.js'
import type { ChatMessage, ChatRequest, CompletionRequest, EmbeddingRequest } from '../../core/openai-schema.js'
import { reasoningText } from '../../core/reasoning.js'
import type { OllamaChatRequest, OllamaEmbedRequest, OllamaGenerateRequest, OllamaMessage, OllamaOptions, OllamaTool, OllamaToolCall } from './wire.js'

/** Provider settings that shape every request: `options.*` and `num_ctx` become model options. */
export interface OllamaSettings {
  options: OllamaOptions
  keepAlive?: string | number
}

export function readOllamaSettings(settings: Record<string, unknown>): OllamaSettings {
  const options: OllamaOptions = isPlainObject(settings.options) ? { ...settings.options } : {}
  if (typeof settings.num_ctx === 'number') options.num_ctx = settings.num_ctx
  const keepAlive = settings.keep_alive
  return { options, ...(typeof keepAlive === 'string' || typeof keepAlive === 'number' ? { keepAlive } : {}) }
}

/**
 * OpenAI parameters Ollama has no equivalent for. They are left out (the request still succeeds, as it
 * would on a model that ignores them) and reported through CallContext.warn.
 */
const UNSUPPORTED_CHAT = ['logprobs', 'top_logprobs', 'logit_bias', 'parallel_tool_calls', 'user', 'store', 'metadata', 'service_tier', 'modalities', 'audio', 'prediction', 'web_search_options', 'functions', 'function_call'] as const
const UNSUPPORTED_COMPLETION = ['logprobs', 'best_of', 'logit_bias', 'user'] as const
const UNSUPPORTED_EMBEDDING = ['user'] as const

export function droppedParams(req: Record<string, unknown>, kind: 'chat' | 'completion' | 'embedding'): string[] {
  const names = kind === 'chat' ? UNSUPPORTED_CHAT : kind === 'completion' ? UNSUPPORTED_COMPLETION : UNSUPPORTED_EMBEDDING
  const dropped: string[] = names.filter((name) => req[name] !== undefined && req[name] !== null && req[name] !== false)
  // 'required' cannot be enforced: the tools are offered and the model decides.
  if (kind === 'chat' && req.tool_choice === 'required' && Array.isArray(req.tools) && req.tools.length > 0) dropped.push('tool_choice')
  return dropped
}

export function toOllamaChat(req: ChatRequest, model: string, stream: boolean, settings: OllamaSettings): OllamaChatRequest {
  refuseManyChoices(req.n)
  const body: OllamaChatRequest = { model, messages: toOllamaMessages(req.messages), stream }
  const tools = toolsFor(req)
  if (tools) body.tools = tools
  const format = formatFor(req.response_format)
  if (format) body.format = format
  const options = optionsFor(req, settings, req.max_completion_tokens ?? req.max_tokens)
  if (Object.keys(options).length > 0) body.options = options
  const keepAlive = keepAliveFor(req, settings)
  if (keepAlive !== undefined) body.keep_alive = keepAlive
  const think = thinkFor(req.reasoning_effort)
  if (think !== undefined) body.think = think
  return body
}

export function toOllamaGenerate(req: CompletionRequest, model: string, stream: boolean, settings: OllamaSettings): OllamaGenerateRequest {
  refuseManyChoices(req.n)
  const body: OllamaGenerateRequest = { model, prompt: promptText(req.prompt), stream }
  if (req.suffix) body.suffix = req.suffix
  const options = optionsFor(req, settings, req.max_tokens)
  if (Object.keys(options).length > 0) body.options = options
  const keepAlive = keepAliveFor(req, settings)
  if (keepAlive !== undefined) body.keep_alive = keepAlive
  return body
}

export function toOllamaEmbed(req: EmbeddingRequest, model: string, settings: OllamaSettings): OllamaEmbedRequest {
  const input = req.input
  if (typeof input !== 'string' && !input.every((i): i is string => typeof i === 'string')) {
    throw invalidRequest('Ollama embeds text; token arrays are not supported. Send the input as a string or an array of strings.', 'input')
  }
  const body: OllamaEmbedRequest = { model, input }
  if (req.dimensions) body.dimensions = req.dimensions
  if (Object.keys(settings.options).length > 0) body.options = { ...settings.options }
  if (settings.keepAlive !== undefined) body.keep_alive = settings.keepAlive
  return body
}

export function toOllamaMessages(messages: ChatMessage[]): OllamaMessage[] {
  return messages.map((m, i): OllamaMessage => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textOf(m.content, i) }
      case 'user':
        return userMessage(m.content, i)
      case 'assistant': {
        const msg: OllamaMessage = { role: 'assistant', content: textOf(m.content, i) }
        const calls: OllamaToolCall[] = (m.tool_calls ?? []).map((tc, j) => ({
          function: { name: tc.function.name, arguments: parseArguments(tc.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`) },
        }))
        const legacy = m.function_call as { name?: unknown; arguments?: unknown } | undefined
        if (legacy && typeof legacy.name === 'string') {
          calls.push({ function: { name: legacy.name, arguments: parseArguments(legacy.arguments, `messages[${i}].function_call.arguments`) } })
        }
        if (calls.length > 0) msg.tool_calls = calls
        const thinking = earlierThinking(m)
        if (thinking) msg.thinking = thinking
        return msg
      }
      case 'tool': {
        const name = toolNameFor(messages, i, m.tool_call_id)
        return { role: 'tool', content: textOf(m.content, i), ...(name ? { tool_name: name } : {}) }
      }
      case 'function':
        return { role: 'tool', content: textOf(m.content, i), tool_name: m.name }
    }
  })
}

/**
 * The reasoning of an earlier answer, sent back as Ollama's `thinking` (its chat templates put it in
 * the prompt where the model expects it): `reasoning` (or `reasoning_content`), else the text of
 * Anthropic-style thinking blocks, whose signatures mean nothing to Ollama.
 */
function earlierThinking(m: Record<string, unknown>): string | undefined {
  const text = reasoningText(m)
  if (text) return text
  if (!Array.isArray(m.thinking_blocks)) return undefined
  const joined = m.thinking_blocks.map((b: { thinking?: unknown }) => (typeof b?.thinking === 'string' ? b.thinking : '')).join('')
  return joined || undefined
}

/** The function a tool result answers, found by its tool_call_id in the assistant turns before it. */
function toolNameFor(messages: ChatMessage[], at: number, callId: string): string | undefined {
  for (let i = at - 1; i >= 0; i--) {
    const m = messages[i]!
    if (m.role !== 'assistant') continue
    const call = m.tool_calls?.find((tc) => tc.id === callId)
    if (call) return call.function.name
  }
  return undefined
}

function userMessage(content: ChatMessage['content'], i: number): OllamaMessage {
  if (typeof content === 'string' || !content) return { role: 'user', content: content ?? '' }
  const texts: string[] = []
  const images: string[] = []
  content.forEach((part, j) => {
    if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text)
    else if (part.type === 'image_url') images.push(imageData(part.image_url, `messages[${i}].content[${j}].image_url`))
    else throw invalidRequest(`Ollama's chat takes text and image parts only, not '${part.type}'.`, `messages[${i}].content[${j}].type`)
  })
  return { role: 'user', content: texts.join('\n'), ...(images.length > 0 ? { images } : {}) }
}

/** Ollama takes images as bare base64; it cannot fetch a URL, and the proxy does not fetch one for it. */
function imageData(imageUrl: unknown, param: string): string {
  const url = typeof imageUrl === 'string' ? imageUrl : isPlainObject(imageUrl) && typeof imageUrl.url === 'string' ? imageUrl.url : null
  const match = url ? /^data:[^,]*;base64,(.*)$/s.exec(url) : null
  if (!match) {
    throw invalidRequest('Ollama takes images only inline, as base64 data URLs (data:image/png;base64,…); download the image and send its bytes.', param)
  }
  return match[1]!
}

function textOf(content: ChatMessage['content'], i: number): string {
  if (typeof content === 'string') return content
  if (!content) return ''
  return content
    .map((part, j) => {
      if (part.type === 'text' && typeof part.text === 'string') return part.text
      if (part.type === 'refusal' && typeof part.refusal === 'string') return part.refusal
      throw invalidRequest(`Ollama cannot take a '${part.type}' part in this message; only text.`, `messages[${i}].content[${j}].type`)
    })
    .join('\n')
}

/** OpenAI carries tool-call arguments as JSON text; Ollama wants the object. */
function parseArguments(text: unknown, param: string): Record<string, unknown> {
  if (text === undefined || text === null || text === '') return {}
  if (isPlainObject(text)) return text
  try {
    const parsed: unknown = JSON.parse(String(text))
    if (isPlainObject(parsed)) return parsed
  } catch {
    // reported below
  }
  throw invalidRequest('Tool-call arguments must be a JSON object; Ollama cannot take other values.', param)
}

/**
 * Ollama has no tool_choice. 'none' is honoured by not offering the tools; a named function by offering
 * only that one; 'required' cannot be enforced, so the tools go as they are and the model decides.
 */
function toolsFor(req: ChatRequest): OllamaTool[] | undefined {
  if (!req.tools?.length || req.tool_choice === 'none') return undefined
  let tools = req.tools
  const choice = req.tool_choice
  if (choice && typeof choice === 'object') {
    tools = tools.filter((t) => t.function.name === choice.function.name)
    if (tools.length === 0) throw invalidRequest(`tool_choice names '${choice.function.name}', which is not among the tools.`, 'tool_choice')
  }
  // OpenAI's function tools are Ollama's format already; fields Ollama does not know (strict) it ignores.
  return tools as OllamaTool[]
}

function formatFor(format: ChatRequest['response_format']): OllamaChatRequest['format'] | undefined {
  if (!format || format.type === 'text') return undefined
  if (format.type === 'json_object') return 'json'
  if (format.type === 'json_schema') {
    const schema = (format.json_schema as { schema?: unknown } | undefined)?.schema
    return isPlainObject(schema) ? schema : 'json'
  }
  throw invalidRequest(`Ollama cannot produce response_format '${format.type}'.`, 'response_format.type')
}

interface SamplingFields {
  temperature?: number | null
  top_p?: number | null
  seed?: number | null
  stop?: string | string[] | null
  frequency_penalty?: number | null
  presence_penalty?: number | null
  [k: string]: unknown
}

/**
 * Options, lowest precedence first: the provider's `options.*` settings, an Ollama `options` object the
 * client sent as an extra field, Ollama-only sampling fields sent the way vLLM clients send them (top_k,
 * min_p, repeat_penalty), then the OpenAI parameters.
 */
function optionsFor(req: SamplingFields, settings: OllamaSettings, maxTokens: number | null | undefined): OllamaOptions {
  const options: OllamaOptions = { ...settings.options, ...(isPlainObject(req.options) ? req.options : {}) }
  for (const extra of ['top_k', 'min_p', 'repeat_penalty'] as const) {
    if (typeof req[extra] === 'number') options[extra] = req[extra]
  }
  const set = (key: string, value: unknown) => {
    if (value !== undefined && value !== null) options[key] = value
  }
  set('temperature', req.temperature)
  set('top_p', req.top_p)
  set('seed', req.seed)
  set('frequency_penalty', req.frequency_penalty)
  set('presence_penalty', req.presence_penalty)
  set('num_predict', maxTokens)
  if (typeof req.stop === 'string') options.stop = [req.stop]
  else if (Array.isArray(req.stop) && req.stop.length > 0) options.stop = req.stop
  return options
}

function keepAliveFor(req: Record<string, unknown>, settings: OllamaSettings): string | number | undefined {
  const k = req.keep_alive
  return typeof k === 'string' || typeof k === 'number' ? k : settings.keepAlive
}

/** reasoning_effort as Ollama's `think`: 'none' turns thinking off, the levels pass (minimal as low). */
function thinkFor(effort: unknown): OllamaChatRequest['think'] | undefined {
  if (typeof effort !== 'string') return undefined
  if (effort === 'none') return false
  if (effort === 'minimal' || effort === 'low') return 'low'
  if (effort === 'medium' || effort === 'high') return effort
  throw invalidRequest(`reasoning_effort '${effort}' is not one of none, minimal, low, medium, high.`, 'reasoning_effort')
}

function promptText(prompt: CompletionRequest['prompt']): string {
  if (typeof prompt === 'string') return prompt
  if (prompt.length === 1 && typeof prompt[0] === 'string') return prompt[0]
  if (prompt.every((p) => typeof p === 'string')) {
    throw invalidRequest('Ollama completes one prompt per request; send the prompts one at a time.', 'prompt')
  }
  throw invalidRequest('Ollama completes text; token-array prompts are not supported.', 'prompt')
}

function refuseManyChoices(n: number | null | undefined): void {
  if (n !== undefined && n !== null && n > 1) throw invalidRequest("Ollama returns one choice per request; 'n' must be 1.", 'n')
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
