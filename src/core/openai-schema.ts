/**
 * Request schemas (validated once, at the HTTP edge) and the response shapes adapters must produce.
 * Request objects are loose: parameters we do not know pass through to OpenAI-shaped upstreams untouched,
 * so a new OpenAI parameter works through the proxy the day it ships.
 */
import * as z from './zod.js'
import { invalidRequest, ProxyError } from './errors.js'

const nullableNumber = (min: number, max: number) => z.number().min(min).max(max).nullish()
const positiveInt = z.number().int().min(1).nullish()

const contentPart = z.looseObject({ type: z.string() })
const messageContent = z.union([z.string(), z.array(contentPart)]).nullish()

const toolCall = z.looseObject({
  id: z.string(),
  type: z.literal('function').optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
})

export const chatMessageSchema = z.discriminatedUnion('role', [
  z.looseObject({ role: z.literal('system'), content: messageContent, name: z.string().optional() }),
  z.looseObject({ role: z.literal('developer'), content: messageContent, name: z.string().optional() }),
  z.looseObject({ role: z.literal('user'), content: messageContent, name: z.string().optional() }),
  z.looseObject({
    role: z.literal('assistant'),
    content: messageContent,
    name: z.string().optional(),
    tool_calls: z.array(toolCall).nullish(),
    refusal: z.string().nullish(),
  }),
  z.looseObject({ role: z.literal('tool'), content: messageContent, tool_call_id: z.string() }),
  z.looseObject({ role: z.literal('function'), content: messageContent, name: z.string() }),
])

const functionTool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
})

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
])

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish()

export const chatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(chatMessageSchema).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: positiveInt,
  max_completion_tokens: positiveInt,
  temperature: nullableNumber(0, 2),
  top_p: nullableNumber(0, 1),
  n: positiveInt,
  stop,
  presence_penalty: nullableNumber(-2, 2),
  frequency_penalty: nullableNumber(-2, 2),
  seed: z.number().int().nullish(),
  user: z.string().optional(),
  tools: z.array(functionTool).optional(),
  tool_choice: toolChoice.optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: z.looseObject({ type: z.string() }).optional(),
})

export const completionRequestSchema = z.looseObject({
  model: z.string().min(1),
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number().int()), z.array(z.array(z.number().int()))]),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: positiveInt,
  temperature: nullableNumber(0, 2),
  top_p: nullableNumber(0, 1),
  n: positiveInt,
  stop,
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  user: z.string().optional(),
})

export const embeddingRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1),
  ]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().min(1).optional(),
  user: z.string().optional(),
})

export type ChatMessage = z.infer<typeof chatMessageSchema>
export type ChatRequest = z.infer<typeof chatRequestSchema>
export type CompletionRequest = z.infer<typeof completionRequestSchema>
export type EmbeddingRequest = z.infer<typeof embeddingRequestSchema>

/** Parses a request body or throws a 400 naming the offending field, as OpenAI does with `param`. */
export function parseRequest<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_body')
  }
  const result = schema.safeParse(body)
  if (result.success) return result.data
  throw zodToProxyError(result.error, body)
}

/**
 * The first issue as OpenAI words it: a parameter the body does not have is missing, one of the wrong
 * type is a type error naming what was expected, anything else an invalid value. Whether a parameter
 * is there is read from the body itself (zod leaves `issue.input` out unless asked for it).
 */
export function zodToProxyError(error: z.ZodError, body: unknown): ProxyError {
  const issue = error.issues[0]!
  const param = formatPath(issue.path)
  const at = valueAt(body, issue.path)
  const typeError = issue.code === 'invalid_type' || (issue.code === 'invalid_union' && !('discriminator' in issue))
  if (at === ABSENT && (typeError || issue.code === 'invalid_union')) {
    return invalidRequest(`Missing required parameter: '${param}'.`, param || null, 'missing_required_parameter')
  }
  const expected = typeError ? expectedTypes(issue) : null
  if (expected) {
    return invalidRequest(`Invalid type for '${param || 'body'}': expected ${expected}, got ${describeType(at)}.`, param || null, 'invalid_type')
  }
  return invalidRequest(`Invalid value for '${param || 'body'}': ${issue.message}.`, param || null, 'invalid_value')
}

const ABSENT = Symbol('absent')

function valueAt(body: unknown, path: PropertyKey[]): unknown {
  let value = body
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !(key in value)) return ABSENT
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return value
}

/** 'a string', or 'a string or an array' for a union whose every branch wanted another type; null when not a type error. */
function expectedTypes(issue: z.core.$ZodIssue): string | null {
  if (issue.code === 'invalid_type') return withArticle(issue.expected)
  if (issue.code !== 'invalid_union') return null
  const types: string[] = []
  for (const branch of issue.errors) {
    const first = branch[0]
    if (first?.code !== 'invalid_type' || first.path.length > 0) return null
    const type = withArticle(first.expected)
    if (!types.includes(type)) types.push(type)
  }
  return types.length > 0 ? types.join(' or ') : null
}

function withArticle(type: string): string {
  if (type === 'int') return 'an integer'
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return withArticle(typeof value)
}

function formatPath(path: PropertyKey[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out ? `.${String(part)}` : String(part)
  }
  return out
}

// ---- response shapes (what every adapter returns) ----

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details?: { cached_tokens?: number; [k: string]: unknown }
  completion_tokens_details?: Record<string, unknown>
}

export interface ToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call'

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  choices: Array<{
    index: number
    message: {
      role: 'assistant'
      content: string | null
      refusal: string | null
      tool_calls?: ToolCall[]
      [k: string]: unknown
    }
    finish_reason: FinishReason | null
    logprobs: unknown
    [k: string]: unknown
  }>
  usage?: Usage
  system_fingerprint?: string | null
  [k: string]: unknown
}

export interface ToolCallDelta {
  index: number
  id?: string
  type?: 'function'
  function?: { name?: string; arguments?: string }
}

export interface ChatCompletionChunk {
  id: string
  object: 'chat.completion.chunk'
  created: number
  model: string
  choices: Array<{
    index: number
    delta: { role?: 'assistant'; content?: string | null; refusal?: string | null; tool_calls?: ToolCallDelta[] }
    finish_reason: FinishReason | null
    logprobs?: unknown
    [k: string]: unknown
  }>
  usage?: Usage | null
  system_fingerprint?: string | null
  [k: string]: unknown
}

export interface Completion {
  id: string
  object: 'text_completion'
  created: number
  model: string
  choices: Array<{ index: number; text: string; finish_reason: FinishReason | null; logprobs: unknown }>
  usage?: Usage
  [k: string]: unknown
}

export interface EmbeddingResponse {
  object: 'list'
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string }>
  model: string
  usage: { prompt_tokens: number; total_tokens: number }
}

export interface ModelObject {
  id: string
  object: 'model'
  created: number
  owned_by: string
}
