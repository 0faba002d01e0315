/**
 * The OpenAI Responses API request (`POST /v1/responses`), validated once at the edge. The same schema
 * guards native calls (OpenAI, Azure: the body goes through untouched) and translated ones, so it is
 * loose: unknown fields are kept, and item, content and tool types it does not know pass as long as they
 * have a `type`; only the shapes the translators read are checked field by field. A type error names the
 * parameter (`input[3].call_id`), as OpenAI's own errors do.
 */
import * as z from './zod.js'
import { invalidRequest } from './errors.js'
import { zodToProxyError } from './openai-schema.js'
import { byType } from './schema-by-type.js'

const text = z.string()
const nullableString = z.string().nullish()

// ---- message content ----

const inputText = z.looseObject({ type: z.literal('input_text'), text })
const inputImage = z.looseObject({
  type: z.literal('input_image'),
  image_url: nullableString,
  file_id: nullableString,
  detail: z.enum(['low', 'high', 'auto', 'original']).nullish(),
})
const inputFile = z.looseObject({
  type: z.literal('input_file'),
  file_id: nullableString,
  file_data: z.string().optional(),
  file_url: z.string().optional(),
  filename: z.string().optional(),
})
const outputText = z.looseObject({ type: z.literal('output_text'), text })
const refusal = z.looseObject({ type: z.literal('refusal'), refusal: z.string() })

const CONTENT: Record<string, z.ZodType> = { input_text: inputText, input_image: inputImage, input_file: inputFile, output_text: outputText, refusal }

/** Any object with a string `type`, or none: an item, part or tool of a type this schema does not read. */
const typed = z.looseObject({ type: z.string().nullish() })

/**
 * A string, or else what `other` accepts. Not a z.union: a union that fails reports only "Invalid input"
 * at its own path, where this reports the failing field inside the list (`input[3].call_id`).
 */
function stringOr<T, S extends string = string>(other: z.ZodType<T>, string: z.ZodType<S> = text as z.ZodType<string> as z.ZodType<S>): z.ZodType<S | T> {
  return z.unknown().check((ctx) => {
    const result = (typeof ctx.value === 'string' ? string : other).safeParse(ctx.value)
    if (!result.success) ctx.issues.push(...(result.error.issues as never[]))
  }) as unknown as z.ZodType<S | T>
}

export type InputText = z.infer<typeof inputText>
export type InputImage = z.infer<typeof inputImage>
export type InputFile = z.infer<typeof inputFile>
export type OutputText = z.infer<typeof outputText>
export type Refusal = z.infer<typeof refusal>
/** A content part of a message; `OtherPart` is any type this schema does not know (input_audio…). */
export type ContentPart = InputText | InputImage | InputFile | OutputText | Refusal | OtherPart
export type OtherPart = { type: string; [k: string]: unknown }

const contentPart = byType<ContentPart>(CONTENT, typed)
const messageContent = stringOr(z.array(contentPart))

// ---- input items ----

const message = z.looseObject({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: messageContent,
  id: z.string().optional(),
  status: z.string().optional(),
})
const functionCall = z.looseObject({
  type: z.literal('function_call'),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  namespace: z.string().optional(),
  id: z.string().optional(),
  status: z.string().optional(),
})
const toolOutput = stringOr(z.array(contentPart))
const functionCallOutput = z.looseObject({
  type: z.literal('function_call_output'),
  call_id: z.string(),
  output: toolOutput,
  id: nullableString,
})
const customToolCall = z.looseObject({
  type: z.literal('custom_tool_call'),
  call_id: z.string(),
  name: z.string(),
  input: z.string(),
  namespace: z.string().optional(),
  id: z.string().optional(),
})
const customToolCallOutput = z.looseObject({ type: z.literal('custom_tool_call_output'), call_id: z.string(), output: toolOutput })
const reasoning = z.looseObject({
  type: z.literal('reasoning'),
  id: z.string().optional(),
  summary: z.array(z.looseObject({ type: z.string(), text: z.string() })).optional(),
  content: z.array(z.looseObject({ type: z.string(), text: z.string().optional() })).nullish(),
  encrypted_content: nullableString,
})
const itemReference = z.looseObject({ type: z.literal('item_reference').nullish(), id: z.string() })

export type MessageItem = z.infer<typeof message>
export type FunctionCallItem = z.infer<typeof functionCall>
export type FunctionCallOutputItem = z.infer<typeof functionCallOutput>
export type CustomToolCallItem = z.infer<typeof customToolCall>
export type CustomToolCallOutputItem = z.infer<typeof customToolCallOutput>
export type ReasoningItem = z.infer<typeof reasoning>
export type ItemReference = z.infer<typeof itemReference>
/** An item of a type the translators do not read (web_search_call, compaction…): kept as sent. */
export type OtherItem = { type: string; [k: string]: unknown }
export type InputItem =
  | MessageItem
  | FunctionCallItem
  | FunctionCallOutputItem
  | CustomToolCallItem
  | CustomToolCallOutputItem
  | ReasoningItem
  | ItemReference
  | OtherItem

const ITEMS: Record<string, z.ZodType> = {
  message,
  function_call: functionCall,
  function_call_output: functionCallOutput,
  custom_tool_call: customToolCall,
  custom_tool_call_output: customToolCallOutput,
  reasoning,
  item_reference: itemReference,
}

/** An item without a `type` is a message when it has a role (EasyInputMessage), else an item reference. */
export function itemType(item: Record<string, unknown>): string {
  if (typeof item.type === 'string') return item.type
  return 'role' in item ? 'message' : 'item_reference'
}

const inputItem = byType<InputItem>(ITEMS, typed, itemType)

// ---- tools ----

const functionTool = z.looseObject({
  type: z.literal('function'),
  name: z.string().min(1),
  description: nullableString,
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
})
const customTool = z.looseObject({
  type: z.literal('custom'),
  name: z.string().min(1),
  description: z.string().optional(),
  format: z.looseObject({ type: z.string() }).optional(),
})
const namespaceTool = z.looseObject({
  type: z.literal('namespace'),
  name: z.string().min(1),
  description: z.string().optional(),
  tools: z.array(byType<FunctionTool | CustomTool | OtherTool>({ function: functionTool, custom: customTool }, typed)).min(1),
})

export type FunctionTool = z.infer<typeof functionTool>
export type CustomTool = z.infer<typeof customTool>
export type NamespaceTool = z.infer<typeof namespaceTool>
/** Hosted (web_search, file_search, mcp…) and other built-in tools: kept as sent. */
export type OtherTool = { type: string; [k: string]: unknown }
export type ResponsesTool = FunctionTool | CustomTool | NamespaceTool | OtherTool

const tool = byType<ResponsesTool>({ function: functionTool, custom: customTool, namespace: namespaceTool }, typed)

const toolChoice = stringOr(
  byType<{ type: string; name?: string; [k: string]: unknown }>({
    function: z.looseObject({ type: z.literal('function'), name: z.string() }),
    custom: z.looseObject({ type: z.literal('custom'), name: z.string() }),
    allowed_tools: z.looseObject({ type: z.literal('allowed_tools'), mode: z.enum(['auto', 'required']), tools: z.array(z.looseObject({ type: z.string() })) }),
  }, typed),
  z.enum(['none', 'auto', 'required']),
)

// ---- text format ----

const textFormat = byType<{ type: string; name?: string; schema?: Record<string, unknown>; strict?: boolean | null; description?: string; [k: string]: unknown }>({
  text: z.looseObject({ type: z.literal('text') }),
  json_object: z.looseObject({ type: z.literal('json_object') }),
  json_schema: z.looseObject({
    type: z.literal('json_schema'),
    name: z.string().min(1),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().nullish(),
    description: z.string().optional(),
  }),
}, typed)

export const responsesRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: stringOr(z.array(inputItem)).optional(),
  instructions: nullableString,
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  parallel_tool_calls: z.boolean().nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  max_tool_calls: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  reasoning: z
    .looseObject({
      effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']).nullish(),
      summary: z.enum(['auto', 'concise', 'detailed']).nullish(),
    })
    .nullish(),
  text: z.looseObject({ format: textFormat.optional(), verbosity: z.enum(['low', 'medium', 'high']).nullish() }).optional(),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  background: z.boolean().nullish(),
  previous_response_id: nullableString,
  include: z.array(z.string()).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().optional(),
  safety_identifier: nullableString,
  prompt_cache_key: nullableString,
  truncation: z.enum(['auto', 'disabled']).nullish(),
  service_tier: nullableString,
  client_metadata: z.record(z.string(), z.unknown()).nullish(),
})

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>

/** Parses a Responses request body or throws a 400 naming the offending parameter. */
export function parseResponsesRequest(body: unknown): ResponsesRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_body')
  }
  const result = responsesRequestSchema.safeParse(body)
  if (result.success) return result.data
  throw zodToProxyError(result.error, body)
}
