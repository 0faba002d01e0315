/**
 * The conformance matrix's clients: one per ingress API, each the official SDK (`openai` for chat
 * completions and Responses, `@anthropic-ai/sdk` for Messages) asking the proxy in its own API's form,
 * and each answer, error and broken stream read back into one shape the matrix compares across APIs.
 */
import { crc32, deflateSync } from 'node:zlib'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { decodeThinking } from '../../src/server/responses/thinking-codec.js'

export type Api = 'chat' | 'responses' | 'messages'

/** What every cell asks, in the words of its API. */
export const PROMPT = 'Wie ist das Wetter in Zürich?'

/** A real 3×2 PNG (RGB, one colour), made here so its bytes are known exactly. */
function png(width: number, height: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const out = Buffer.alloc(body.length + 8)
    out.writeUInt32BE(data.length, 0)
    body.copy(out, 4)
    out.writeUInt32BE(crc32(body), body.length + 4)
    return out
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bits per channel
  header[9] = 2 // truecolour
  const row = Buffer.from([0, ...Array.from({ length: width }, () => rgb).flat()])
  const pixels = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))])
}

const PNG = png(3, 2, [200, 30, 90])
export const IMAGE = { mediaType: 'image/png', base64: PNG.toString('base64'), dataUrl: `data:image/png;base64,${PNG.toString('base64')}` }

type ToolSpec = {
  name: string
  description: string
  parameters: { type: 'object'; properties: Record<string, unknown>; required: string[] }
}

/** The tools a cell may offer: the first n (two for parallel calls, three for a call without arguments). */
export const TOOLS: ToolSpec[] = [
  {
    name: 'get_weather',
    description: 'The weather in a city for the next days',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'array', items: { type: 'integer' } } }, required: ['city'] },
  },
  { name: 'get_time', description: 'The local time in a time zone', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
  { name: 'list_cities', description: 'The cities with a forecast (takes no arguments)', parameters: { type: 'object', properties: {}, required: [] } },
]

/** An earlier turn a conversation may carry: the model called get_weather, and this is what it returned. */
export const EARLIER = { call: { id: 'call_earlier_1', name: 'get_weather', args: { city: 'Zürich', days: [1] } }, result: '{"temp_c":21,"sky":"sonnig"}' }

/** Reasoning as each API asks for it: OpenAI's effort, Anthropic's budget (both mean "low"). */
export const REASONING = { effort: 'low', budget: 2048 } as const

/** What a cell asks the proxy for. */
export interface Ask {
  model: string
  stream: boolean
  /** how many of TOOLS to offer */
  tools: 0 | 1 | 2 | 3
  image: boolean
  reasoning: boolean
  /** the conversation carries EARLIER: a tool call and its result, after the prompt */
  earlier: boolean
  /** sent as x-request-id, so the audit row can be found */
  requestId: string
}

/** An answer, read the same way whatever API carried it. */
export interface Answer {
  text: string
  calls: Array<{ id: string; name: string; args: unknown }>
  /** the reasoning text the answer shows, or null */
  reasoning: string | null
  /**
   * what the client must send back for the reasoning to continue on the next turn: the first thinking
   * block's signature (Responses: read from the proxy's encrypted_content, or OpenAI's own content whole)
   */
  signature: string | null
  /** chat finish_reason, Responses status, Messages stop_reason */
  stop: string | null
  /**
   * input: every input token (Messages: input_tokens and both cache counts); cached: those read from the
   * prompt cache (0 when the API does not say); reasoning: reasoning tokens where the API reports them, else null
   */
  usage: { input: number; output: number; total: number; cached: number; reasoning: number | null }
}

/** An error answer before the first byte, as the SDK raised it. */
export interface ErrorSeen {
  error: unknown
  status: number | undefined
  /** the error type in the API's body (OpenAI: error.type; Anthropic: error.error.type) */
  type: string | undefined
  /** OpenAI's error.code; Anthropic's error.error.details.error_code */
  code: string | undefined
  message: string
}

/** A stream that broke after its first byte: the text it carried, and how the client learnt of the failure. */
export interface BrokenSeen {
  text: string
  /** raised: the SDK threw; failed: the stream ended with a Response whose status is failed */
  how: 'raised' | 'failed'
  error: unknown
  /** OpenAI: the error event's code; Responses: response.error.code; Anthropic: the error event's type */
  code: string | undefined
  message: string
}

export interface Client {
  api: Api
  ask(a: Ask): Promise<Answer>
  /**
   * A tool loop: asks (streamed when `a.stream`), sends the answer back as it came (its reasoning included)
   * with EARLIER's result for its first call, and asks again, not streamed; `between` runs before that.
   */
  askLoop(a: Ask, between: () => void): Promise<{ first: Answer; second: Answer }>
  askError(a: Ask): Promise<ErrorSeen>
  askBroken(a: Ask): Promise<BrokenSeen>
}

const options = (a: Ask) => ({ headers: { 'x-request-id': a.requestId } })
const parse = (args: string): unknown => JSON.parse(args)
const textOf = (err: unknown) => (err instanceof Error ? err.message : String(err))

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected the request to fail, and it succeeded')
}

function openAIError(err: unknown): ErrorSeen {
  const e = err as { status?: number; error?: { type?: string; code?: string } }
  return { error: err, status: e.status, type: e.error?.type, code: e.error?.code ?? undefined, message: textOf(err) }
}

export function chatClient(sdk: OpenAI): Client {
  const earlier: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'assistant', content: null, tool_calls: [{ id: EARLIER.call.id, type: 'function', function: { name: EARLIER.call.name, arguments: JSON.stringify(EARLIER.call.args) } }] },
    { role: 'tool', tool_call_id: EARLIER.call.id, content: EARLIER.result },
  ]
  const body = (a: Ask): Omit<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, 'stream'> => ({
    model: a.model,
    messages: [{ role: 'user', content: a.image ? [{ type: 'text', text: PROMPT }, { type: 'image_url', image_url: { url: IMAGE.dataUrl } }] : PROMPT }, ...(a.earlier ? earlier : [])],
    ...(a.tools ? { tools: TOOLS.slice(0, a.tools).map((t) => ({ type: 'function' as const, function: t })) } : {}),
    ...(a.reasoning ? { reasoning_effort: REASONING.effort } : {}),
  })
  type Message = OpenAI.Chat.ChatCompletionMessage & { reasoning?: string; reasoning_content?: string; thinking_blocks?: Array<{ signature?: string }> }
  type Block = { type: string; thinking?: string; signature?: string }
  /** What a stream carried beside the SDK's accumulator, which keeps only the last piece of fields it does not know. */
  type Streamed = { field: 'reasoning' | 'reasoning_content' | null; reasoning: string; signature: string | null; blocks: Block[] }
  const stream = async (a: Ask) => {
    const runner = sdk.chat.completions.stream({ ...body(a), stream_options: { include_usage: true } }, options(a))
    const streamed: Streamed = { field: null, reasoning: '', signature: null, blocks: [] }
    runner.on('chunk', (chunk) => {
      const delta = chunk.choices[0]?.delta as { reasoning?: string; reasoning_content?: string; thinking_blocks?: Block[] } | undefined
      const piece = delta?.reasoning ?? delta?.reasoning_content
      if (piece) {
        streamed.field ??= delta?.reasoning !== undefined ? 'reasoning' : 'reasoning_content'
        streamed.reasoning += piece
      }
      streamed.blocks.push(...(delta?.thinking_blocks ?? []))
      streamed.signature ??= delta?.thinking_blocks?.find((b) => b.signature)?.signature ?? null
    })
    return { completion: await runner.finalChatCompletion(), streamed }
  }
  const read = (c: OpenAI.Chat.ChatCompletion, streamed?: Streamed): Answer => {
    const choice = c.choices[0]!
    const m = choice.message as Message
    const reasoning = streamed ? streamed.reasoning || null : (m.reasoning ?? m.reasoning_content ?? null)
    return {
      text: m.content ?? '',
      calls: (m.tool_calls ?? []).map((call) => {
        if (call.type !== 'function') throw new Error(`unexpected tool call type ${call.type}`)
        return { id: call.id, name: call.function.name, args: parse(call.function.arguments) }
      }),
      reasoning,
      signature: streamed ? streamed.signature : (m.thinking_blocks?.find((b) => b.signature)?.signature ?? null),
      stop: choice.finish_reason,
      usage: {
        input: c.usage!.prompt_tokens,
        output: c.usage!.completion_tokens,
        total: c.usage!.total_tokens,
        cached: c.usage!.prompt_tokens_details?.cached_tokens ?? 0,
        reasoning: c.usage!.completion_tokens_details?.reasoning_tokens ?? null,
      },
    }
  }
  return {
    api: 'chat',
    async ask(a) {
      if (!a.stream) return read(await sdk.chat.completions.create(body(a), options(a)))
      const { completion, streamed } = await stream(a)
      return read(completion, streamed)
    },
    async askLoop(a, between) {
      let first: OpenAI.Chat.ChatCompletion
      let message: OpenAI.Chat.ChatCompletionMessage
      let streamed: Streamed | undefined
      if (a.stream) {
        ;({ completion: first, streamed } = await stream({ ...a, requestId: `${a.requestId}.1` }))
        // the message as the stream built it: the reasoning deltas joined, and the thinking blocks given that text
        const { field, reasoning, blocks } = streamed
        message = { ...first.choices[0]!.message, ...(field ? { [field]: reasoning } : {}), ...(blocks.length ? { thinking_blocks: blocks.map((b) => ({ ...b, thinking: reasoning })) } : {}) }
      } else {
        first = await sdk.chat.completions.create(body(a), options({ ...a, requestId: `${a.requestId}.1` }))
        message = first.choices[0]!.message
      }
      between()
      const history: OpenAI.Chat.ChatCompletionMessageParam[] = [message, { role: 'tool', tool_call_id: message.tool_calls![0]!.id, content: EARLIER.result }]
      const start = body(a)
      const second = await sdk.chat.completions.create({ ...start, messages: [...start.messages, ...history] }, options(a))
      return { first: read(first, streamed), second: read(second) }
    },
    async askError(a) {
      const call = a.stream ? sdk.chat.completions.create({ ...body(a), stream: true }, options(a)) : sdk.chat.completions.create(body(a), options(a))
      return openAIError(await rejection(call))
    },
    async askBroken(a) {
      let text = ''
      const err = await rejection(
        (async () => {
          for await (const chunk of await sdk.chat.completions.create({ ...body(a), stream: true }, options(a))) text += chunk.choices[0]?.delta.content ?? ''
        })(),
      )
      return { text, how: 'raised', error: err, code: (err as { error?: { code?: string } }).error?.code, message: textOf(err) }
    },
  }
}

export function responsesClient(sdk: OpenAI): Client {
  const earlier: OpenAI.Responses.ResponseInputItem[] = [
    { type: 'function_call', call_id: EARLIER.call.id, name: EARLIER.call.name, arguments: JSON.stringify(EARLIER.call.args) },
    { type: 'function_call_output', call_id: EARLIER.call.id, output: EARLIER.result },
  ]
  const body = (a: Ask): Omit<OpenAI.Responses.ResponseCreateParamsNonStreaming, 'stream'> => ({
    model: a.model,
    input: a.image
      ? [{ role: 'user', content: [{ type: 'input_text', text: PROMPT }, { type: 'input_image', image_url: IMAGE.dataUrl, detail: 'auto' }] }]
      : a.earlier
        ? [{ role: 'user', content: PROMPT }, ...earlier]
        : PROMPT,
    ...(a.tools ? { tools: TOOLS.slice(0, a.tools).map((t) => ({ type: 'function' as const, ...t, strict: false })) } : {}),
    ...(a.reasoning ? { reasoning: { effort: REASONING.effort, summary: 'auto' }, include: ['reasoning.encrypted_content'] } : {}),
  })
  const read = (r: OpenAI.Responses.Response): Answer => {
    const reasoning = r.output.filter((item) => item.type === 'reasoning')
    const summary = reasoning.flatMap((item) => item.summary.map((s) => s.text)).join('')
    const encrypted = reasoning.find((item) => item.encrypted_content)?.encrypted_content ?? null
    // the proxy's own encrypted_content carries the thinking blocks; anything else is the upstream's, passed on whole
    const blocks = encrypted ? decodeThinking(encrypted) : null
    const signature = blocks ? (blocks.map((b) => (b.type === 'thinking' ? b.signature : '')).find((s) => s) ?? null) : encrypted
    return {
      text: r.output_text,
      calls: r.output.flatMap((item) => (item.type === 'function_call' ? [{ id: item.call_id, name: item.name, args: parse(item.arguments) }] : [])),
      reasoning: summary || null,
      signature,
      stop: r.status ?? null,
      usage: {
        input: r.usage!.input_tokens,
        output: r.usage!.output_tokens,
        total: r.usage!.total_tokens,
        cached: r.usage!.input_tokens_details?.cached_tokens ?? 0,
        reasoning: r.usage!.output_tokens_details?.reasoning_tokens ?? null,
      },
    }
  }
  return {
    api: 'responses',
    async ask(a) {
      return read(a.stream ? await sdk.responses.stream(body(a), options(a)).finalResponse() : await sdk.responses.create(body(a), options(a)))
    },
    async askLoop(a, between) {
      const o = options({ ...a, requestId: `${a.requestId}.1` })
      const first: OpenAI.Responses.Response = a.stream ? await sdk.responses.stream(body(a), o).finalResponse() : await sdk.responses.create(body(a), o)
      const call = first.output.find((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === 'function_call')!
      between()
      const start = body(a)
      const input: OpenAI.Responses.ResponseInputItem[] = [
        { role: 'user', content: PROMPT },
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        { type: 'function_call_output', call_id: call.call_id, output: EARLIER.result },
      ]
      const second = await sdk.responses.create({ ...start, input }, options(a))
      return { first: read(first), second: read(second) }
    },
    async askError(a) {
      const call = a.stream ? sdk.responses.create({ ...body(a), stream: true }, options(a)) : sdk.responses.create(body(a), options(a))
      return openAIError(await rejection(call))
    },
    async askBroken(a) {
      // The Responses API reports a failure after the first byte as response.failed, which the SDK does not
      // raise: the stream ends with a Response whose status is failed.
      let text = ''
      const stream = sdk.responses.stream(body(a), options(a))
      stream.on('response.output_text.delta', (e) => (text += e.delta))
      const final = await stream.finalResponse()
      if (final.status !== 'failed') throw new Error(`expected a failed response, got status ${final.status}`)
      return { text, how: 'failed', error: final.error, code: final.error?.code, message: final.error?.message ?? '' }
    },
  }
}

export function messagesClient(sdk: Anthropic): Client {
  const earlier: Anthropic.MessageParam[] = [
    { role: 'assistant', content: [{ type: 'tool_use', id: EARLIER.call.id, name: EARLIER.call.name, input: EARLIER.call.args }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: EARLIER.call.id, content: EARLIER.result }] },
  ]
  const body = (a: Ask): Omit<Anthropic.MessageCreateParamsNonStreaming, 'stream'> => ({
    model: a.model,
    // room for the thinking budget, which Anthropic counts into max_tokens
    max_tokens: 4000,
    messages: [
      {
        role: 'user',
        content: a.image ? [{ type: 'text', text: PROMPT }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: IMAGE.base64 } }] : PROMPT,
      },
      ...(a.earlier ? earlier : []),
    ],
    ...(a.tools ? { tools: TOOLS.slice(0, a.tools).map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters })) } : {}),
    ...(a.reasoning ? { thinking: { type: 'enabled', budget_tokens: REASONING.budget } } : {}),
  })
  const read = (m: Anthropic.Message): Answer => {
    const thinking = m.content.filter((b) => b.type === 'thinking')
    const usage = m.usage as Anthropic.Usage & { output_tokens_details?: { thinking_tokens?: number } }
    // Anthropic counts cache reads and writes apart from input_tokens
    const input = usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0)
    return {
      text: m.content.map((b) => (b.type === 'text' ? b.text : '')).join(''),
      calls: m.content.flatMap((b) => (b.type === 'tool_use' ? [{ id: b.id, name: b.name, args: b.input }] : [])),
      reasoning: thinking.map((b) => b.thinking).join('') || null,
      signature: thinking.find((b) => b.signature)?.signature ?? null,
      stop: m.stop_reason,
      usage: { input, output: usage.output_tokens, total: input + usage.output_tokens, cached: usage.cache_read_input_tokens ?? 0, reasoning: usage.output_tokens_details?.thinking_tokens ?? null },
    }
  }
  const anthropicError = (err: unknown) => (err as { error?: { error?: { type?: string; message?: string; details?: { error_code?: string } } } }).error?.error
  return {
    api: 'messages',
    async ask(a) {
      return read(a.stream ? await sdk.messages.stream(body(a), options(a)).finalMessage() : await sdk.messages.create(body(a), options(a)))
    },
    async askLoop(a, between) {
      const o = options({ ...a, requestId: `${a.requestId}.1` })
      const first = a.stream ? await sdk.messages.stream(body(a), o).finalMessage() : await sdk.messages.create(body(a), o)
      const use = first.content.find((b) => b.type === 'tool_use')!
      between()
      const start = body(a)
      const history: Anthropic.MessageParam[] = [
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: EARLIER.result }] },
      ]
      const second = await sdk.messages.create({ ...start, messages: [...start.messages, ...history] }, options(a))
      return { first: read(first), second: read(second) }
    },
    async askError(a) {
      const call = a.stream ? sdk.messages.create({ ...body(a), stream: true }, options(a)) : sdk.messages.create(body(a), options(a))
      const err = await rejection(call)
      const e = anthropicError(err)
      return { error: err, status: (err as { status?: number }).status, type: e?.type, code: e?.details?.error_code, message: textOf(err) }
    },
    async askBroken(a) {
      let text = ''
      const stream = sdk.messages.stream(body(a), options(a))
      stream.on('text', (t) => (text += t))
      const err = await rejection(stream.finalMessage())
      return { text, how: 'raised', error: err, code: anthropicError(err)?.type, message: textOf(err) }
    },
  }
}
