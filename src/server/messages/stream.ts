/**
 * The gateway's chat chunk stream -> Anthropic's stream events (message_start, ping, content_block_start /
 * delta / stop, message_delta, message_stop). The server writes each as `event: <type>\ndata: <json>`.
 *
 * Anthropic's blocks come one after the other: a block is stopped before the next starts. Chat chunks are
 * looser, so some pieces wait:
 * - Reasoning becomes a thinking block, text a text block, each tool call (by index) a tool_use block, in
 *   the order they start. A thinking block from `thinking_blocks` brings its signature and ends the block.
 * - One tool call streams live. Pieces of another call (parallel calls interleaved by index) are kept
 *   until the live one is complete, which is when its arguments parse as a JSON object and another call
 *   (or text) shows up; a complete JSON object cannot grow, so nothing of it can arrive later. Whatever is
 *   still kept when the answer finishes goes out then, one call after the other. Text or reasoning that
 *   arrives while a call's arguments are incomplete is kept likewise and follows that call.
 * - The usage chunk comes last (after the finish_reason chunk), so message_delta, which carries the
 *   stop reason and the output tokens, is sent when the chunk stream ends. message_start has the input
 *   tokens only when known early (`inputTokens`, or usage on the first chunk), else 0; message_delta then
 *   carries the input counts as well, which the SDKs take over.
 * - A stream that ends without a finish_reason or usage still ends with message_delta (end_turn, or
 *   tool_use after tool calls; zero output tokens, marked as no report, so the server charges what the
 *   stream carried) and message_stop.
 * - No event is produced before the first chunk arrives: the first byte to the client must wait for the
 *   upstream, so the gateway can still retry or fall back.
 * An error thrown by the chunk stream passes through; the server ends the stream with messagesErrorEvent.
 */
import { randomBase62 } from '../../core/ids.js'
import type { ChatCompletionChunk, FinishReason, ToolCallDelta, Usage } from '../../core/openai-schema.js'
import { reasoningText, type ThinkingBlock } from '../../core/reasoning.js'
import { matchedStop, messageId, stopReason, type AnswerOptions, type AnthropicMessage, type StopReason } from './response.js'
import { toMessagesUsage, withUnreportedUsage, type MessagesUsage } from './usage.js'

export type ContentBlockStart =
  | { type: 'thinking'; thinking: ''; signature: '' }
  | { type: 'redacted_thinking'; data: string }
  | { type: 'text'; text: '' }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, never> }

export type ContentBlockDelta =
  | { type: 'thinking_delta'; thinking: string }
  | { type: 'signature_delta'; signature: string }
  | { type: 'text_delta'; text: string }
  | { type: 'input_json_delta'; partial_json: string }

export type MessagesStreamEvent =
  | { type: 'message_start'; message: AnthropicMessage }
  | { type: 'ping' }
  | { type: 'content_block_start'; index: number; content_block: ContentBlockStart }
  | { type: 'content_block_delta'; index: number; delta: ContentBlockDelta }
  | { type: 'content_block_stop'; index: number }
  | { type: 'message_delta'; delta: { stop_reason: StopReason; stop_sequence: string | null }; usage: Partial<MessagesUsage> & { output_tokens: number } }
  | { type: 'message_stop' }

export interface StreamOptions extends AnswerOptions {
  /** the request's input tokens, when the server knows them before the upstream reports usage */
  inputTokens?: number
}

export async function* toMessageEvents(chunks: AsyncIterable<ChatCompletionChunk>, opts: StreamOptions): AsyncGenerator<MessagesStreamEvent> {
  const translation = new Translation(opts)
  for await (const chunk of chunks) {
    translation.chunk(chunk)
    yield* translation.take()
  }
  translation.end()
  yield* translation.take()
}

type ChunkDelta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: unknown; reasoning_content?: unknown; thinking_blocks?: ThinkingBlock[] }

interface ToolCallState {
  id: string
  name: string
  args: string
  /** characters of args already sent */
  sent: number
  status: 'waiting' | 'live' | 'closed'
  /** args.length when `complete` was last decided */
  checked: number
  complete: boolean
}

type OpenBlock = { kind: 'text' | 'thinking' | 'redacted_thinking'; index: number; streamed: boolean } | { kind: 'tool'; index: number; call: ToolCallState }

/** Content held back while a tool call's arguments are incomplete, in arrival order. */
type Held = { kind: 'text'; text: string } | { kind: 'thinking'; text: string; signature: string } | { kind: 'redacted'; data: string }

class Translation {
  readonly #opts: StreamOptions
  #out: MessagesStreamEvent[] = []
  #started = false
  #next = 0
  #open: OpenBlock | null = null
  #calls = new Map<number, ToolCallState>()
  #held: Held[] = []
  #finish: FinishReason | null = null
  #sequence: string | null = null
  #refused = false
  #usage: Usage | null = null

  constructor(opts: StreamOptions) {
    this.#opts = opts
  }

  take(): MessagesStreamEvent[] {
    const out = this.#out
    this.#out = []
    return out
  }

  chunk(chunk: ChatCompletionChunk): void {
    if (!this.#started) this.#start(chunk)
    if (chunk.usage) this.#usage = chunk.usage
    const choice = chunk.choices[0]
    if (!choice) return
    const delta = (choice.delta ?? {}) as ChunkDelta
    const reasoning = reasoningText(delta)
    if (reasoning) this.#thinkingText(reasoning)
    if (Array.isArray(delta.thinking_blocks)) for (const block of delta.thinking_blocks) this.#thinkingBlock(block)
    if (delta.content) this.#text(delta.content)
    if (delta.refusal) {
      this.#refused = true
      this.#text(delta.refusal)
    }
    if (delta.tool_calls) for (const call of delta.tool_calls) this.#toolCall(call)
    if (choice.finish_reason) {
      this.#finish = choice.finish_reason
      this.#sequence = matchedStop(choice, this.#opts.stopSequences)
      this.#flush()
    }
  }

  end(): void {
    if (!this.#started) this.#start(null)
    this.#flush()
    const reason = stopReason(this.#finish, { toolUse: this.#calls.size > 0, refused: this.#refused, sequence: this.#sequence })
    const delta: MessagesStreamEvent = { type: 'message_delta', delta: { stop_reason: reason, stop_sequence: this.#sequence }, usage: this.#usage ? toMessagesUsage(this.#usage) : { output_tokens: 0 } }
    this.#out.push(this.#usage ? delta : withUnreportedUsage(delta), { type: 'message_stop' })
  }

  #start(first: ChatCompletionChunk | null): void {
    this.#started = true
    const usage = toMessagesUsage(first?.usage)
    if (!first?.usage) usage.input_tokens = this.#opts.inputTokens ?? 0
    const message: AnthropicMessage = {
      id: messageId(first?.id),
      type: 'message',
      role: 'assistant',
      model: this.#opts.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage,
    }
    this.#out.push({ type: 'message_start', message }, { type: 'ping' })
  }

  #text(piece: string): void {
    if (this.#open?.kind === 'text') return this.#delta({ type: 'text_delta', text: piece })
    if (this.#holding()) return this.#hold('text', piece)
    this.#startBlock({ type: 'text', text: '' })
    this.#delta({ type: 'text_delta', text: piece })
  }

  #thinkingText(piece: string): void {
    const open = this.#open
    if (open?.kind === 'thinking') {
      open.streamed = true
      return this.#delta({ type: 'thinking_delta', thinking: piece })
    }
    if (this.#holding()) return this.#hold('thinking', piece)
    this.#startBlock({ type: 'thinking', thinking: '', signature: '' }).streamed = true
    this.#delta({ type: 'thinking_delta', thinking: piece })
  }

  /** A complete thinking block: its signature ends the thinking block in progress, or it is a block of its own. */
  #thinkingBlock(block: ThinkingBlock): void {
    if (block.type === 'redacted_thinking') {
      if (this.#holding()) return void this.#held.push({ kind: 'redacted', data: block.data })
      this.#startBlock({ type: 'redacted_thinking', data: block.data })
      return this.#close()
    }
    const open = this.#open
    if (open?.kind !== 'thinking') {
      if (this.#holding()) {
        const last = this.#held.at(-1)
        if (last?.kind === 'thinking' && !last.signature) last.signature = block.signature
        else this.#held.push({ kind: 'thinking', text: block.thinking, signature: block.signature })
        return
      }
      this.#startBlock({ type: 'thinking', thinking: '', signature: '' })
    }
    // the text normally went out as reasoning deltas already; a block that brings its text alone sends it now
    if (!(open?.kind === 'thinking' && open.streamed) && block.thinking) this.#delta({ type: 'thinking_delta', thinking: block.thinking })
    if (block.signature) this.#delta({ type: 'signature_delta', signature: block.signature })
    this.#close()
  }

  #toolCall(piece: ToolCallDelta): void {
    let call = this.#calls.get(piece.index)
    if (!call) {
      call = { id: piece.id || `toolu_${randomBase62(24)}`, name: '', args: '', sent: 0, status: 'waiting', checked: -1, complete: false }
      this.#calls.set(piece.index, call)
    }
    if (piece.function?.name && !call.name) call.name = piece.function.name
    // A closed call's arguments were a complete JSON object: anything after it could only break them.
    if (piece.function?.arguments && call.status !== 'closed') call.args += piece.function.arguments
    const open = this.#open
    if (open?.kind === 'tool') {
      if (open.call === call) return this.#sendArgs(call)
      if (!isComplete(open.call)) return
    }
    const next = [...this.#calls.values()].find((c) => c.status === 'waiting' && c.name)
    if (next) this.#startTool(next)
  }

  #startTool(call: ToolCallState): void {
    this.#closeAll()
    const index = this.#next++
    this.#out.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } })
    call.status = 'live'
    this.#open = { kind: 'tool', index, call }
    this.#sendArgs(call)
  }

  #sendArgs(call: ToolCallState): void {
    if (call.sent === call.args.length) return
    this.#delta({ type: 'input_json_delta', partial_json: call.args.slice(call.sent) })
    call.sent = call.args.length
  }

  /** Whether text or thinking must wait: held content waits its turn, and a live call with incomplete arguments is not over. */
  #holding(): boolean {
    if (this.#held.length > 0) return true
    const open = this.#open
    if (open?.kind !== 'tool') return false
    if (!isComplete(open.call)) return true
    this.#close()
    return false
  }

  #hold(kind: 'text' | 'thinking', piece: string): void {
    const last = this.#held.at(-1)
    if (last?.kind === kind && !(last.kind === 'thinking' && last.signature)) last.text += piece
    else this.#held.push(kind === 'text' ? { kind, text: piece } : { kind, text: piece, signature: '' })
  }

  #startBlock(block: Exclude<ContentBlockStart, { type: 'tool_use' }>): { streamed: boolean } {
    this.#closeAll()
    const index = this.#next++
    this.#out.push({ type: 'content_block_start', index, content_block: block })
    const open = { kind: block.type, index, streamed: false }
    this.#open = open
    return open
  }

  #delta(delta: ContentBlockDelta): void {
    this.#out.push({ type: 'content_block_delta', index: this.#open!.index, delta })
  }

  #close(): void {
    const open = this.#open
    if (!open) return
    this.#out.push({ type: 'content_block_stop', index: open.index })
    this.#open = null
    if (open.kind !== 'tool') return
    open.call.status = 'closed'
    const held = this.#held
    this.#held = []
    for (const item of held) {
      if (item.kind === 'text') this.#text(item.text)
      else if (item.kind === 'redacted') this.#thinkingBlock({ type: 'redacted_thinking', data: item.data })
      else {
        if (item.text) this.#thinkingText(item.text)
        if (item.signature) this.#thinkingBlock({ type: 'thinking', thinking: item.text, signature: item.signature })
      }
    }
  }

  /** Closing a tool block sends the content held behind it, which may leave a block of its own open. */
  #closeAll(): void {
    while (this.#open) this.#close()
  }

  /** The answer is over (or the stream is): every block still open or kept goes out, in order. */
  #flush(): void {
    this.#closeAll()
    for (const call of this.#calls.values()) if (call.status === 'waiting') this.#startTool(call)
    this.#closeAll()
  }
}

function isComplete(call: ToolCallState): boolean {
  if (call.checked !== call.args.length) {
    call.checked = call.args.length
    call.complete = isJsonObject(call.args)
  }
  return call.complete
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value)
  } catch {
    return false
  }
}
