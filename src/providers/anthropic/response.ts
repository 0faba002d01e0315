/** Anthropic message -> OpenAI chat.completion / text_completion, and the pieces the stream mapper shares. */
import type { ProxyError } from '../../core/errors.js'
import type { ChatCompletion, Completion, FinishReason, ToolCall, Usage } from '../../core/openai-schema.js'
import type { ThinkingBlock } from '../../core/reasoning.js'
import { upstreamHttpError } from '../shared/upstream-error.js'
import type { ErrorDetail, MessageResponse, ResponseBlock, Usage as AnthropicUsage } from './wire.js'

export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** `msg_…` becomes `chatcmpl-msg_…`, so a client-side id still leads to Anthropic's own request. */
export const completionId = (kind: 'chatcmpl' | 'cmpl', messageId: string | undefined) => `${kind}-${messageId ?? 'anthropic'}`

export function finishReason(stopReason: string | null | undefined): FinishReason | null {
  switch (stopReason) {
    case null:
    case undefined:
      return null
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length'
    case 'tool_use':
      return 'tool_calls'
    case 'refusal':
      return 'content_filter'
    default:
      // end_turn, stop_sequence, pause_turn and anything newer: the model stopped on its own
      return 'stop'
  }
}

/**
 * Anthropic counts cached prompt tokens apart from input_tokens; OpenAI counts them into prompt_tokens.
 * Cache writes are reported as prompt_tokens_details.cache_creation_tokens (the gateway's extension), as
 * they are priced apart from plain input.
 */
export function toUsage(u: AnthropicUsage): Usage {
  const cacheRead = u.cache_read_input_tokens ?? 0
  const cacheCreation = u.cache_creation_input_tokens ?? 0
  const prompt = (u.input_tokens ?? 0) + cacheRead + cacheCreation
  const completion = u.output_tokens ?? 0
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead, ...(cacheCreation > 0 ? { cache_creation_tokens: cacheCreation } : {}) },
  }
}

/** A thinking or redacted_thinking block as the gateway carries it; anything else is null. */
export function thinkingBlock(block: ResponseBlock): ThinkingBlock | null {
  if (block.type === 'thinking') return { type: 'thinking', thinking: block.thinking ?? '', signature: block.signature ?? '' }
  if (block.type === 'redacted_thinking' && typeof block.data === 'string') return { type: 'redacted_thinking', data: block.data }
  return null
}

export function toChatCompletion(msg: MessageResponse, fallbackModel: string): ChatCompletion {
  let text: string | null = null
  const toolCalls: ToolCall[] = []
  const thinking: ThinkingBlock[] = []
  for (const block of msg.content ?? []) {
    if (block.type === 'text' && typeof block.text === 'string') text = (text ?? '') + block.text
    else if (block.type === 'tool_use') {
      toolCalls.push({ id: block.id ?? `call_${toolCalls.length}`, type: 'function', function: { name: block.name ?? '', arguments: JSON.stringify(block.input ?? {}) } })
    } else {
      const t = thinkingBlock(block)
      if (t) thinking.push(t)
    }
    // server-side tool blocks have no OpenAI counterpart and are skipped
  }
  // the text of the thinking as `reasoning`; the blocks whole, signatures included, for the next turn
  const reasoning = thinking.map((t) => (t.type === 'thinking' ? t.thinking : '')).join('')
  return {
    id: completionId('chatcmpl', msg.id),
    object: 'chat.completion',
    created: nowSeconds(),
    model: msg.model ?? fallbackModel,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
          ...(thinking.length > 0 ? { reasoning, thinking_blocks: thinking } : {}),
        },
        finish_reason: finishReason(msg.stop_reason),
        logprobs: null,
      },
    ],
    usage: toUsage(msg.usage ?? {}),
  }
}

export function toCompletion(msg: MessageResponse, fallbackModel: string): Completion {
  const text = (msg.content ?? []).map((b) => (b.type === 'text' && typeof b.text === 'string' ? b.text : '')).join('')
  return {
    id: completionId('cmpl', msg.id),
    object: 'text_completion',
    created: nowSeconds(),
    model: msg.model ?? fallbackModel,
    choices: [{ index: 0, text, finish_reason: finishReason(msg.stop_reason), logprobs: null }],
    usage: toUsage(msg.usage ?? {}),
  }
}

/** The HTTP status Anthropic uses for each error type (https://docs.anthropic.com/en/api/errors). */
const STATUS_BY_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
}

/**
 * An `error` event inside a 200 stream goes through the same mapper as an HTTP error, with the status
 * Anthropic would have answered for that type: overloaded_error is a retryable 529 (upstream_overloaded).
 */
export function streamError(provider: string, error: ErrorDetail | undefined): ProxyError {
  const status = STATUS_BY_TYPE[error?.type ?? ''] ?? 500
  return upstreamHttpError(provider, status, { message: error?.message ?? error?.type ?? 'stream failed', type: error?.type })
}
