/**
 * The body of an Anthropic Messages request (`POST /v1/messages`, `/v1/messages/count_tokens`), validated
 * once at the edge. The same parsed body is sent natively to Anthropic providers and translated for the
 * others, so the schema checks the shapes we read and lets everything else through: objects are loose
 * (unknown fields kept), and a content block, source, tool or thinking setting of a type we do not know
 * passes untouched (only a translated provider refuses it). A malformed block of a known type is refused
 * with a 400 naming the exact parameter (`messages[0].content[2].text`).
 */
import * as z from './zod.js'
import { invalidRequest, type ProxyError } from './errors.js'
import { parseRequest, zodToProxyError } from './openai-schema.js'
import { MIN_THINKING_BUDGET } from './reasoning.js'
import { byType as checkedByType } from './schema-by-type.js'

type Typed = { type: string; [k: string]: unknown }

/** Any object with a string `type`: a block, source or setting of a type this schema does not read. */
const typed = z.looseObject({ type: z.string() })

/**
 * An object with a string `type`, checked against the schema for that type when there is one and passed
 * through otherwise. The output is typed as the known variants; code that reads it must still expect an
 * unknown `type` at run time (a `default:` branch).
 */
const byType = <const S extends Record<string, z.ZodType<Typed>>>(schemas: S) => checkedByType<z.output<S[keyof S]>>(schemas, typed)

/** A string or a list; a union error says what was expected instead of zod's "Invalid input". */
const stringOr = <T extends z.ZodType>(list: T, what: string) => z.union([z.string(), list], { error: `expected a string or ${what}` })

const cacheControl = z.looseObject({ type: z.string(), ttl: z.string().optional() }).nullish()
const jsonObject = z.record(z.string(), z.unknown())

export const textBlockSchema = z.looseObject({
  type: z.literal('text'),
  text: z.string(),
  cache_control: cacheControl,
  citations: z.array(z.unknown()).nullish(),
})

const base64Source = z.looseObject({ type: z.literal('base64'), media_type: z.string(), data: z.string() })
const urlSource = z.looseObject({ type: z.literal('url'), url: z.string().min(1) })
const fileSource = z.looseObject({ type: z.literal('file'), file_id: z.string().min(1) })
const plainTextSource = z.looseObject({ type: z.literal('text'), media_type: z.string().optional(), data: z.string() })

const imageBlock = z.looseObject({
  type: z.literal('image'),
  source: byType({ base64: base64Source, url: urlSource, file: fileSource }),
  cache_control: cacheControl,
})

/** A document's `content` source holds text and image blocks. */
const contentSource = z.looseObject({
  type: z.literal('content'),
  content: stringOr(z.array(byType({ text: textBlockSchema, image: imageBlock })), 'an array of text and image blocks'),
})

const documentBlock = z.looseObject({
  type: z.literal('document'),
  source: byType({ base64: base64Source, url: urlSource, file: fileSource, text: plainTextSource, content: contentSource }),
  title: z.string().nullish(),
  context: z.string().nullish(),
  citations: z.looseObject({ enabled: z.boolean().optional() }).nullish(),
  cache_control: cacheControl,
})

const searchResultBlock = z.looseObject({
  type: z.literal('search_result'),
  source: z.string(),
  title: z.string(),
  content: z.array(textBlockSchema),
  cache_control: cacheControl,
})

/** Names a deferred tool (`defer_loading`) that a tool search loaded, inside a tool_result. */
const toolReferenceBlock = z.looseObject({ type: z.literal('tool_reference'), tool_name: z.string().min(1), cache_control: cacheControl })

const toolResultContent = byType({
  text: textBlockSchema,
  image: imageBlock,
  document: documentBlock,
  search_result: searchResultBlock,
  tool_reference: toolReferenceBlock,
})

const toolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: jsonObject,
  cache_control: cacheControl,
})

const toolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: stringOr(z.array(toolResultContent), 'an array of content blocks').optional(),
  is_error: z.boolean().nullish(),
  cache_control: cacheControl,
})

const thinkingBlock = z.looseObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() })
const redactedThinkingBlock = z.looseObject({ type: z.literal('redacted_thinking'), data: z.string() })

const contentBlock = byType({
  text: textBlockSchema,
  image: imageBlock,
  document: documentBlock,
  search_result: searchResultBlock,
  tool_use: toolUseBlock,
  tool_result: toolResultBlock,
  thinking: thinkingBlock,
  redacted_thinking: redactedThinkingBlock,
})

const messageContent = stringOr(z.array(contentBlock), 'an array of content blocks')

const messageParam = z.discriminatedUnion('role', [
  z.looseObject({ role: z.literal('user'), content: messageContent }),
  z.looseObject({ role: z.literal('assistant'), content: messageContent }),
  // newer API versions accept system instructions between turns
  z.looseObject({ role: z.literal('system'), content: stringOr(z.array(textBlockSchema), 'an array of text blocks') }),
])

/**
 * A custom tool has no `type` (or 'custom') and an input_schema; any other `type` names a tool that
 * Anthropic defines (web_search_20250305, bash_20250124, …), whose fields vary.
 */
const toolParam = z
  .looseObject({
    type: z.string().nullish(),
    name: z.string().min(1),
    description: z.string().optional(),
    input_schema: jsonObject.optional(),
    strict: z.boolean().nullish(),
    defer_loading: z.boolean().nullish(),
    cache_control: cacheControl,
  })
  .superRefine((tool, ctx) => {
    if ((tool.type == null || tool.type === 'custom') && tool.input_schema === undefined) {
      ctx.addIssue({ code: 'invalid_type', expected: 'object', input: undefined, path: ['input_schema'], message: 'Required' })
    }
  })

const noParallel = { disable_parallel_tool_use: z.boolean().nullish() }
const toolChoice = byType({
  auto: z.looseObject({ type: z.literal('auto'), ...noParallel }),
  any: z.looseObject({ type: z.literal('any'), ...noParallel }),
  tool: z.looseObject({ type: z.literal('tool'), name: z.string().min(1), ...noParallel }),
  none: z.looseObject({ type: z.literal('none') }),
})

const display = { display: z.string().nullish() }
const thinkingConfig = byType({
  enabled: z.looseObject({ type: z.literal('enabled'), budget_tokens: z.number().int().min(MIN_THINKING_BUDGET), ...display }),
  disabled: z.looseObject({ type: z.literal('disabled') }),
  adaptive: z.looseObject({ type: z.literal('adaptive'), ...display }),
})

const outputFormat = byType({ json_schema: z.looseObject({ type: z.literal('json_schema'), schema: jsonObject }) })

const requestShape = {
  model: z.string().min(1),
  messages: z.array(messageParam).min(1),
  system: stringOr(z.array(textBlockSchema), 'an array of text blocks').optional(),
  // 0 is valid on Anthropic: it fills the prompt cache without generating anything
  max_tokens: z.number().int().min(0),
  stop_sequences: z.array(z.string()).nullish(),
  temperature: z.number().min(0).max(1).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  stream: z.boolean().nullish(),
  tools: z.array(toolParam).nullish(),
  tool_choice: toolChoice.nullish(),
  thinking: thinkingConfig.nullish(),
  output_config: z.looseObject({ effort: z.string().nullish(), format: outputFormat.nullish() }).nullish(),
  /** the structured-outputs beta's older name for output_config.format */
  output_format: outputFormat.nullish(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).nullish(),
  service_tier: z.string().nullish(),
  context_management: z.looseObject({ edits: z.array(z.looseObject({ type: z.string() })).optional() }).nullish(),
  cache_control: cacheControl,
}

export const messagesRequestSchema = z.looseObject(requestShape)
/** count_tokens takes the same body without max_tokens. */
export const countTokensRequestSchema = z.looseObject({ ...requestShape, max_tokens: requestShape.max_tokens.optional() })

export type MessagesRequest = z.infer<typeof messagesRequestSchema>
export type CountTokensRequest = z.infer<typeof countTokensRequestSchema>
export type MessageParam = MessagesRequest['messages'][number]
export type ContentBlockParam = z.infer<typeof contentBlock>
export type ToolResultContentParam = z.infer<typeof toolResultContent>
export type TextBlockParam = z.infer<typeof textBlockSchema>
export type ImageBlockParam = z.infer<typeof imageBlock>
export type DocumentBlockParam = z.infer<typeof documentBlock>
export type ToolParam = z.infer<typeof toolParam>

/** Parses a Messages body, or throws a 400 naming the offending parameter. */
export function parseMessagesRequest(body: unknown): MessagesRequest {
  return parseWith(messagesRequestSchema, body)
}

export function parseCountTokensRequest(body: unknown): CountTokensRequest {
  return parseWith(countTokensRequestSchema, body)
}

function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return parseRequest(schema, body)
  const result = schema.safeParse(body)
  if (result.success) return result.data
  throw toError(result.error, body)
}

/**
 * A failed union (string or blocks) reports the branch that got furthest, with its full path: a block
 * missing its `text` names `messages[0].content[2].text`, not just `messages[0].content`.
 */
function toError(error: z.ZodError, body: unknown): ProxyError {
  let issue = error.issues[0]
  if (!issue) return invalidRequest('The request body is invalid.')
  const prefix: PropertyKey[] = []
  while (issue.code === 'invalid_union' && issue.errors.length > 0) {
    let best: z.core.$ZodIssue | undefined
    for (const branch of issue.errors) {
      const first = branch[0]
      if (first && first.path.length > (best?.path.length ?? 0)) best = first
    }
    if (!best) break
    prefix.push(...issue.path)
    issue = best
  }
  return zodToProxyError(new z.ZodError([{ ...issue, path: [...prefix, ...issue.path] }]), body)
}
