/**
 * Token usage between Anthropic's shape and the gateway's. Anthropic counts cache reads and cache writes
 * apart from `input_tokens`; the gateway's `prompt_tokens` counts every input token (contract), with the
 * reads as `cached_tokens` and the writes as `cache_creation_tokens`.
 */
import type { Usage } from '../../core/openai-schema.js'

/** Usage as a Message and its stream events carry it. */
export interface MessagesUsage {
  input_tokens: number
  output_tokens: number
  cache_creation_input_tokens: number
  cache_read_input_tokens: number
  output_tokens_details?: { thinking_tokens: number }
}

/** Anthropic usage as it arrives: any field may be missing or null (a message_delta carries only some). */
export interface AnthropicUsageFields {
  input_tokens?: number | null
  output_tokens?: number | null
  cache_creation_input_tokens?: number | null
  cache_read_input_tokens?: number | null
}

const COUNTERS = ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0)

/** The gateway's usage as Anthropic reports it; no usage at all reads as zeros. */
export function toMessagesUsage(usage: Usage | null | undefined): MessagesUsage {
  const details = usage?.prompt_tokens_details
  const cacheRead = num(details?.cached_tokens)
  const cacheWrite = num(details?.cache_creation_tokens)
  const out: MessagesUsage = {
    input_tokens: Math.max(0, num(usage?.prompt_tokens) - cacheRead - cacheWrite),
    output_tokens: num(usage?.completion_tokens),
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
  }
  const reasoning = usage?.completion_tokens_details?.reasoning_tokens
  if (typeof reasoning === 'number') out.output_tokens_details = { thinking_tokens: reasoning }
  return out
}

/** Anthropic's usage as the gateway's, for accounting a native answer. */
export function fromMessagesUsage(u: AnthropicUsageFields): Usage {
  const cacheRead = num(u.cache_read_input_tokens)
  const cacheWrite = num(u.cache_creation_input_tokens)
  const prompt = num(u.input_tokens) + cacheRead + cacheWrite
  const completion = num(u.output_tokens)
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead, cache_creation_tokens: cacheWrite },
  }
}

/** The usage of a Message object, or null when it has none (or only the zeros of an unreported one). */
export function messageUsage(message: Record<string, unknown>): Usage | null {
  const usage = message.usage
  return usage && typeof usage === 'object' && !unreported.has(message) ? fromMessagesUsage(usage as AnthropicUsageFields) : null
}

/** Messages and message_delta events whose usage is zeros standing in for a report the upstream never made */
const unreported = new WeakSet<object>()

/**
 * Marks a translated Message or message_delta as carrying no real usage: Anthropic's shape requires the
 * field, but the accounting must not take its zeros for the upstream's word.
 */
export function withUnreportedUsage<T extends object>(value: T): T {
  unreported.add(value)
  return value
}

/**
 * Follows a stream's usage: message_start carries the input counts, message_delta the output count and
 * (lately) updated input counts. Every value is a running total, so a later one replaces an earlier one.
 * Only message_delta reports the answer's output: message_start's output count is a placeholder (Anthropic
 * says 1 or 2; a translated stream 0, its input too when not known yet), so a stream that ends before a
 * message_delta (the upstream failed, the client left), or whose upstream reported no usage at all, has
 * reported none, and is charged what it carried.
 */
export class StreamUsage {
  #fields: AnthropicUsageFields = {}
  #reported = false

  observe(event: { type: string; [k: string]: unknown }): void {
    const usage = event.type === 'message_start' ? (event.message as { usage?: unknown } | undefined)?.usage : event.type === 'message_delta' ? event.usage : undefined
    if (!usage || typeof usage !== 'object') return
    if (event.type === 'message_delta' && !unreported.has(event)) this.#reported = true
    for (const key of COUNTERS) {
      const value = (usage as AnthropicUsageFields)[key]
      if (typeof value === 'number') this.#fields[key] = value
    }
  }

  /** null until a message_delta reported the answer's usage */
  get usage(): Usage | null {
    return this.#reported ? fromMessagesUsage(this.#fields) : null
  }
}
