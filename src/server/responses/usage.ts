/**
 * Token usage in both shapes: the gateway's (chat completions) and the Responses API's. Translated answers
 * go from the first to the second; native answers and streams (OpenAI, Azure) from the second to the
 * first, for accounting.
 */
import type { Usage } from '../../core/openai-schema.js'

export interface ResponsesUsage {
  input_tokens: number
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number }
  output_tokens: number
  output_tokens_details: { reasoning_tokens: number }
  total_tokens: number
}

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0)

export function toResponsesUsage(usage: Usage): ResponsesUsage {
  const prompt = usage.prompt_tokens_details ?? {}
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: count(prompt.cached_tokens), cache_write_tokens: count(prompt.cache_creation_tokens) },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: count(usage.completion_tokens_details?.reasoning_tokens) },
    total_tokens: usage.total_tokens,
  }
}

/** The usage of a Response object (native or translated), or null when it has none. */
export function usageOfResponse(response: { usage?: unknown } | null | undefined): Usage | null {
  const u = response?.usage as Partial<Record<keyof ResponsesUsage, unknown>> | null | undefined
  if (!u || typeof u.input_tokens !== 'number' || typeof u.output_tokens !== 'number') return null
  const input = (u.input_tokens_details ?? {}) as Record<string, unknown>
  const output = (u.output_tokens_details ?? {}) as Record<string, unknown>
  const usage: Usage = {
    prompt_tokens: u.input_tokens,
    completion_tokens: u.output_tokens,
    total_tokens: typeof u.total_tokens === 'number' ? u.total_tokens : u.input_tokens + u.output_tokens,
  }
  const cached = count(input.cached_tokens)
  const written = count(input.cache_write_tokens)
  if (cached || written) usage.prompt_tokens_details = { cached_tokens: cached, ...(written ? { cache_creation_tokens: written } : {}) }
  if (output.reasoning_tokens != null) usage.completion_tokens_details = { reasoning_tokens: count(output.reasoning_tokens) }
  return usage
}

/** The usage a stream event reports: the final events (completed, incomplete, failed) carry the whole Response. */
export function usageOfEvent(event: { type: string; response?: unknown }): Usage | null {
  if (event.type !== 'response.completed' && event.type !== 'response.incomplete' && event.type !== 'response.failed') return null
  return usageOfResponse(event.response as { usage?: unknown } | undefined)
}
