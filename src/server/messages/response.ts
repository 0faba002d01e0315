/**
 * The gateway's chat completion -> an Anthropic Message, and the pieces the stream translator shares.
 *
 * - id: `msg_` and the completion's id without its `chatcmpl-` prefix, so it still leads to the upstream's.
 * - content: thinking first (the answer's thinking_blocks, or its reasoning text as one thinking block with
 *   an empty signature), then text, then one tool_use block per tool call.
 * - A tool call whose arguments are not a JSON object (models do emit broken JSON) cannot be an Anthropic
 *   `input`: the text is kept as `{"_raw_arguments": "<text>"}`, so the client's tool validation rejects
 *   it and the model sees what it sent, instead of the whole answer failing. Empty arguments are `{}`.
 * - usage: zeros when the upstream reported none (Anthropic's shape requires it), marked so that the
 *   server does not account them as the upstream's figures.
 * - stop_reason: length -> max_tokens, tool_calls -> tool_use, content_filter (or a refusal) -> refusal,
 *   stop -> end_turn, or stop_sequence when the upstream names the stop it matched (vLLM's `stop_reason`,
 *   SGLang's `matched_stop`) and it is one of the request's. OpenAI does not say which stop matched, so
 *   there a stop sequence ends the turn as end_turn. A stop with tool calls (some hosts say 'stop' there)
 *   is tool_use.
 */
import type { ChatCompletion, FinishReason } from '../../core/openai-schema.js'
import { reasoningText, type ThinkingBlock } from '../../core/reasoning.js'
import { toMessagesUsage, withUnreportedUsage, type MessagesUsage } from './usage.js'

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal'

export type MessageContentBlock =
  | ThinkingBlock
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }

export interface AnthropicMessage {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: MessageContentBlock[]
  stop_reason: StopReason | null
  stop_sequence: string | null
  usage: MessagesUsage
}

export interface AnswerOptions {
  /** the model the client asked for, which Anthropic echoes */
  model: string
  /** the request's stop_sequences, to tell a stop_sequence stop from an end_turn */
  stopSequences?: readonly string[] | null
}

export function messageId(completionId: string | undefined): string {
  if (!completionId) return 'msg_proxy'
  if (completionId.startsWith('msg_')) return completionId
  return `msg_${completionId.startsWith('chatcmpl-') ? completionId.slice('chatcmpl-'.length) : completionId}`
}

/** The stop sequence an upstream says it matched, when it is one of the request's. */
export function matchedStop(choice: Record<string, unknown>, stops: readonly string[] | null | undefined): string | null {
  const value = choice.stop_reason ?? choice.matched_stop
  return typeof value === 'string' && stops?.includes(value) ? value : null
}

export function stopReason(finish: FinishReason | null, stop: { toolUse: boolean; refused: boolean; sequence: string | null }): StopReason {
  switch (finish) {
    case 'length':
      return 'max_tokens'
    case 'tool_calls':
    case 'function_call':
      return 'tool_use'
    case 'content_filter':
      return 'refusal'
    default:
      if (stop.refused) return 'refusal'
      if (stop.sequence !== null) return 'stop_sequence'
      return stop.toolUse ? 'tool_use' : 'end_turn'
  }
}

/** Tool call arguments as an Anthropic tool input (see the module comment for broken JSON). */
export function toolInput(args: string): Record<string, unknown> {
  if (args.trim() === '') return {}
  try {
    const value: unknown = JSON.parse(args)
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // kept raw below
  }
  return { _raw_arguments: args }
}

export function toMessage(completion: ChatCompletion, opts: AnswerOptions): AnthropicMessage {
  const choice = completion.choices[0]
  const message = choice?.message
  const content: MessageContentBlock[] = []
  if (message) {
    content.push(...thinkingContent(message))
    const text = message.content ?? ''
    const refusal = message.refusal ?? ''
    if (text !== '') content.push({ type: 'text', text })
    if (refusal !== '') content.push({ type: 'text', text: refusal })
    for (const call of message.tool_calls ?? []) {
      content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInput(call.function.arguments) })
    }
  }
  const sequence = choice ? matchedStop(choice, opts.stopSequences) : null
  const answer: AnthropicMessage = {
    id: messageId(completion.id),
    type: 'message',
    role: 'assistant',
    model: opts.model,
    content,
    stop_reason: stopReason(choice?.finish_reason ?? null, {
      toolUse: (message?.tool_calls?.length ?? 0) > 0,
      refused: !!message?.refusal,
      sequence,
    }),
    stop_sequence: sequence,
    usage: toMessagesUsage(completion.usage),
  }
  return completion.usage ? answer : withUnreportedUsage(answer)
}

/** The answer's thinking blocks as they came, with the reasoning text filled in when the blocks carry none. */
function thinkingContent(message: Record<string, unknown>): ThinkingBlock[] {
  const reasoning = reasoningText(message)
  const blocks = Array.isArray(message.thinking_blocks) ? (message.thinking_blocks as ThinkingBlock[]) : []
  if (blocks.length === 0) return reasoning ? [{ type: 'thinking', thinking: reasoning, signature: '' }] : []
  const hasText = blocks.some((b) => b.type === 'thinking' && b.thinking !== '')
  if (hasText || !reasoning) return blocks
  let filled = false
  return blocks.map((b) => {
    if (b.type !== 'thinking' || filled) return b
    filled = true
    return { ...b, thinking: reasoning }
  })
}
