/** Shared by the Responses translator tests: chat chunks as adapters yield them, and error capture. */
import { expect } from 'vitest'
import { ProxyError } from '../../../../src/core/errors.js'
import type { ChatCompletionChunk, FinishReason, ToolCallDelta, Usage } from '../../../../src/core/openai-schema.js'
import type { ThinkingBlock } from '../../../../src/core/reasoning.js'

/** The ProxyError `fn` throws. */
export function refusal(fn: () => unknown): ProxyError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError)
    return err as ProxyError
  }
  throw new Error('expected a ProxyError')
}

type Delta = { role?: 'assistant'; content?: string; refusal?: string; reasoning?: string; reasoning_content?: string; thinking_blocks?: ThinkingBlock[]; tool_calls?: ToolCallDelta[] }

export function chunk(delta: Delta, finish_reason: FinishReason | null = null): ChatCompletionChunk {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta: delta as ChatCompletionChunk['choices'][number]['delta'], finish_reason, logprobs: null }] }
}

export const finishChunk = (reason: FinishReason) => chunk({}, reason)

/** The usage chunk: last, after the finish chunk, with no choices. */
export function usageChunk(usage: Usage): ChatCompletionChunk {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [], usage }
}

export const USAGE: Usage = {
  prompt_tokens: 120,
  completion_tokens: 40,
  total_tokens: 160,
  prompt_tokens_details: { cached_tokens: 100, cache_creation_tokens: 8 },
  completion_tokens_details: { reasoning_tokens: 12 },
}

export async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item
}

export async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}
