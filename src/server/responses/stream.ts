/**
 * The gateway's chat chunk stream as the Responses API's event stream, in the order OpenAI sends it and
 * the official SDK's accumulator expects: response.created, response.in_progress, then per output item
 * output_item.added, its part and delta events, output_item.done; finally response.completed (or
 * response.incomplete when the answer was cut off), carrying the whole Response with its usage.
 *
 * Item kinds follow the deltas: reasoning text opens a `reasoning` item (one summary part per thinking
 * block), text a `message`, each tool call index its own `function_call` item; a new kind closes the items
 * of the one before. Parallel tool calls stay open together until the end, so argument pieces that arrive
 * interleaved by index go to their own item. A custom tool's call is a `custom_tool_call` whose input is
 * sent whole when the call ends (its chat arguments are our JSON wrapper around it).
 *
 * Each event has a `sequence_number` counting from 0. The state (the Response so far and the next number)
 * is the caller's, so that an upstream failure after the first byte can end the stream with
 * `responseFailedEvent` (errors.ts) and the Response can be stored whatever happened.
 */
import type { ChatCompletionChunk, FinishReason, ToolCallDelta, Usage } from '../../core/openai-schema.js'
import { reasoningText, type ThinkingBlock } from '../../core/reasoning.js'
import type { ResponsesRequest } from '../../core/responses-schema.js'
import {
  finish,
  newItemId,
  outputText,
  responseShell,
  type CustomToolCallOutput,
  type FunctionCallOutput,
  type ItemStatus,
  type MessageOutput,
  type OutputItem,
  type OutputTextPart,
  type ReasoningOutput,
  type RefusalPart,
  type ResponseObject,
  type ResponseOptions,
} from './output.js'
import { encodeThinking } from './thinking-codec.js'
import { customInput, toolNames, type ToolNames } from './tools.js'
import { toResponsesUsage } from './usage.js'

/** One event of the stream; the server writes it as `event: <type>` and `data: <json>`. */
export type ResponseEvent = { type: string; sequence_number: number; [k: string]: unknown }

export interface ResponseStreamState {
  /** the Response so far: every item opened, finished or not */
  readonly response: ResponseObject
  /** the sequence_number of the next event */
  sequence: number
  readonly names: ToolNames
}

export function newResponseStream(req: ResponsesRequest, opts: ResponseOptions = {}): ResponseStreamState {
  return { response: responseShell(req, opts), sequence: 0, names: toolNames(req.tools) }
}

/** An event with the next sequence number. */
export function event(state: ResponseStreamState, type: string, fields: Record<string, unknown>): ResponseEvent {
  return { type, sequence_number: state.sequence++, ...fields }
}

type Delta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: unknown; reasoning_content?: unknown; thinking_blocks?: ThinkingBlock[] }

interface OpenReasoning {
  item: ReasoningOutput
  index: number
  /** the summary part being written, or null between thinking blocks */
  part: { type: 'summary_text'; text: string } | null
  /** reasoning text since the last complete thinking block: a streamed block carries its text as '' */
  sinceBlock: string
  blocks: ThinkingBlock[]
}
interface OpenMessage {
  item: MessageOutput
  index: number
  part: OutputTextPart | RefusalPart | null
}
interface OpenCall {
  item: FunctionCallOutput | CustomToolCallOutput
  index: number
  args: string
  done: boolean
}

export async function* toResponseEvents(chunks: AsyncIterable<ChatCompletionChunk>, state: ResponseStreamState): AsyncGenerator<ResponseEvent> {
  const response = state.response
  let reasoning: OpenReasoning | null = null
  let message: OpenMessage | null = null
  const calls = new Map<number, OpenCall>()
  let openCalls: OpenCall[] = []
  let finishReason: FinishReason | null = null
  let usage: Usage | null = null

  const at = (open: { item: { id: string }; index: number }) => ({ item_id: open.item.id, output_index: open.index })

  function* open<T extends OutputItem>(item: T): Generator<ResponseEvent, number> {
    const index = response.output.push(item) - 1
    yield event(state, 'response.output_item.added', { output_index: index, item: structuredClone(item) })
    return index
  }

  function* closeSummaryPart(r: OpenReasoning): Generator<ResponseEvent> {
    if (!r.part) return
    const summary_index = r.item.summary.length - 1
    yield event(state, 'response.reasoning_summary_text.done', { ...at(r), summary_index, text: r.part.text })
    yield event(state, 'response.reasoning_summary_part.done', { ...at(r), summary_index, part: { ...r.part } })
    r.part = null
  }

  function* closeReasoning(): Generator<ResponseEvent> {
    if (!reasoning) return
    const r = reasoning
    reasoning = null
    yield* closeSummaryPart(r)
    r.item.encrypted_content = encodeThinking(r.blocks)
    yield event(state, 'response.output_item.done', { output_index: r.index, item: r.item })
  }

  function* closePart(m: OpenMessage): Generator<ResponseEvent> {
    const part = m.part
    if (!part) return
    const content_index = m.item.content.length - 1
    if (part.type === 'output_text') yield event(state, 'response.output_text.done', { ...at(m), content_index, text: part.text, logprobs: [] })
    else yield event(state, 'response.refusal.done', { ...at(m), content_index, refusal: part.refusal })
    yield event(state, 'response.content_part.done', { ...at(m), content_index, part: { ...part } })
    m.part = null
  }

  function* closeMessage(status: ItemStatus): Generator<ResponseEvent> {
    if (!message) return
    const m = message
    message = null
    yield* closePart(m)
    m.item.status = status
    yield event(state, 'response.output_item.done', { output_index: m.index, item: m.item })
  }

  function* closeCalls(status: ItemStatus): Generator<ResponseEvent> {
    const closing = openCalls
    openCalls = []
    for (const call of closing) {
      call.done = true
      const item = call.item
      if (item.type === 'custom_tool_call') {
        item.input = customInput(call.args)
        if (item.input) yield event(state, 'response.custom_tool_call_input.delta', { ...at(call), delta: item.input })
        yield event(state, 'response.custom_tool_call_input.done', { ...at(call), input: item.input })
      } else {
        item.status = status
        yield event(state, 'response.function_call_arguments.done', { ...at(call), name: item.name, arguments: item.arguments })
      }
      yield event(state, 'response.output_item.done', { output_index: call.index, item })
    }
  }

  function* startReasoning(): Generator<ResponseEvent, OpenReasoning> {
    if (reasoning) return reasoning
    yield* closeMessage('completed')
    yield* closeCalls('completed')
    const item: ReasoningOutput = { id: newItemId('rs', response.id), type: 'reasoning', summary: [] }
    const index = yield* open(item)
    reasoning = { item, index, part: null, sinceBlock: '', blocks: [] }
    return reasoning
  }

  function* reasoningDelta(text: string): Generator<ResponseEvent> {
    const r = yield* startReasoning()
    if (!r.part) {
      r.part = { type: 'summary_text', text: '' }
      r.item.summary.push(r.part)
      yield event(state, 'response.reasoning_summary_part.added', { ...at(r), summary_index: r.item.summary.length - 1, part: { type: 'summary_text', text: '' } })
    }
    r.part.text += text
    r.sinceBlock += text
    yield event(state, 'response.reasoning_summary_text.delta', { ...at(r), summary_index: r.item.summary.length - 1, delta: text })
  }

  function* thinkingBlocks(blocks: ThinkingBlock[]): Generator<ResponseEvent> {
    const r = yield* startReasoning()
    for (const block of blocks) {
      // a streamed block's text went out as reasoning deltas; Anthropic checks the signature against it
      r.blocks.push(block.type === 'thinking' && block.thinking === '' ? { ...block, thinking: r.sinceBlock } : block)
      r.sinceBlock = ''
    }
    yield* closeSummaryPart(r)
  }

  function* messageDelta(type: 'output_text' | 'refusal', text: string): Generator<ResponseEvent> {
    yield* closeReasoning()
    yield* closeCalls('completed')
    if (!message) {
      const item: MessageOutput = { id: newItemId('msg', response.id), type: 'message', status: 'in_progress', role: 'assistant', content: [] }
      const index = yield* open(item)
      message = { item, index, part: null }
    }
    const m: OpenMessage = message
    if (m.part?.type !== type) {
      yield* closePart(m)
      const part: OutputTextPart | RefusalPart = type === 'output_text' ? { type, text: '', annotations: [], logprobs: [] } : { type, refusal: '' }
      m.part = part
      m.item.content.push(part)
      yield event(state, 'response.content_part.added', { ...at(m), content_index: m.item.content.length - 1, part: { ...part } })
    }
    const content_index = m.item.content.length - 1
    if (m.part.type === 'output_text') {
      m.part.text += text
      yield event(state, 'response.output_text.delta', { ...at(m), content_index, delta: text, logprobs: [] })
    } else {
      m.part.refusal += text
      yield event(state, 'response.refusal.delta', { ...at(m), content_index, delta: text })
    }
  }

  function* toolCallDelta(delta: ToolCallDelta): Generator<ResponseEvent> {
    yield* closeReasoning()
    yield* closeMessage('completed')
    let call = calls.get(delta.index)
    if (!call) {
      const chatName = delta.function?.name ?? ''
      const origin = state.names.get(chatName)
      const base = { call_id: delta.id || newItemId('call'), name: origin?.name ?? chatName, ...(origin?.namespace ? { namespace: origin.namespace } : {}) }
      const item: OutputItem =
        origin?.kind === 'custom'
          ? { id: newItemId('ctc', response.id), type: 'custom_tool_call', ...base, input: '' }
          : { id: newItemId('fc', response.id), type: 'function_call', status: 'in_progress', ...base, arguments: '' }
      call = { item, index: -1, args: '', done: false }
      call.index = yield* open(item)
      calls.set(delta.index, call)
      openCalls.push(call)
    }
    // a host that sends the name after the id: the item gets it before it is done
    if (!call.item.name && delta.function?.name) call.item.name = state.names.get(delta.function.name)?.name ?? delta.function.name
    // pieces of a call already closed (text came in between) have no item left to go to
    const piece = delta.function?.arguments
    if (!piece || call.done) return
    call.args += piece
    if (call.item.type === 'function_call') {
      call.item.arguments += piece
      yield event(state, 'response.function_call_arguments.delta', { ...at(call), delta: piece })
    }
  }

  yield event(state, 'response.created', { response: { ...response, output: [] } })
  yield event(state, 'response.in_progress', { response: { ...response, output: [] } })

  for await (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage
    // one choice: the translator never asks for n > 1
    const choice = chunk.choices[0]
    if (!choice) continue
    const delta = (choice.delta ?? {}) as Delta
    const text = reasoningText(delta)
    if (text) yield* reasoningDelta(text)
    if (delta.thinking_blocks?.length) yield* thinkingBlocks(delta.thinking_blocks)
    if (delta.content) yield* messageDelta('output_text', delta.content)
    if (delta.refusal) yield* messageDelta('refusal', delta.refusal)
    for (const call of delta.tool_calls ?? []) yield* toolCallDelta(call)
    if (choice.finish_reason) finishReason = choice.finish_reason
  }

  const cut = finishReason === 'length' || finishReason === 'content_filter'
  yield* closeReasoning()
  yield* closeMessage(cut ? 'incomplete' : 'completed')
  yield* closeCalls(cut ? 'incomplete' : 'completed')
  finish(response, finishReason)
  response.output_text = outputText(response.output)
  if (usage) response.usage = toResponsesUsage(usage)
  yield event(state, response.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response })
}
