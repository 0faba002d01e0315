/**
 * Token estimates for token limits, made before the upstream call and corrected by the usage the upstream
 * reports (see Limiter.settle). Only message text is counted, with gpt-tokenizer's cl100k_base: it loads in
 * about half the time of o200k_base and counts slightly high for recent models, which is the safe side for
 * a limit. Counting is capped per request (`budgetChars`): past the budget the rest is extrapolated from the
 * tokens-per-character seen so far, so a huge prompt never costs more than a few milliseconds.
 */
import type { ChatRequest, CompletionRequest, EmbeddingRequest } from '../core/openai-schema.js'

export type CountFn = (text: string) => number

/** Characters counted exactly per request; the rest is extrapolated. */
export const DEFAULT_BUDGET_CHARS = 24_000
/** Before the tokenizer has loaded: OpenAI's rule of thumb, about four characters a token. */
const CHARS_PER_TOKEN = 4

export const roughCount: CountFn = (text) => Math.ceil(text.length / CHARS_PER_TOKEN)

/** Loads the tokenizer once (the module is about 1 MB); owned by the limiter, not a module-level singleton. */
export class Tokenizer {
  #count: CountFn | null = null
  #loading: Promise<void> | null = null

  get ready(): boolean {
    return this.#count !== null
  }

  load(): Promise<void> {
    this.#loading ??= import('gpt-tokenizer/encoding/cl100k_base').then((m) => {
      // Text that happens to contain special tokens ('<|endoftext|>') is counted as text, never refused.
      const options = { disallowedSpecial: new Set<string>() }
      // The merge cache is shared by all requests; keep it modest.
      m.setMergeCacheSize(20_000)
      this.#count = (text) => m.countTokens(text, options)
    }, () => {
      // Without the tokenizer the character heuristic stands; settlement corrects it either way.
    })
    return this.#loading
  }

  /** A counter for one request: exact up to the budget, extrapolated after it. */
  counter(budgetChars = DEFAULT_BUDGET_CHARS): CountFn {
    const exact = this.#count
    if (!exact) return roughCount
    let budget = budgetChars
    let chars = 0
    let tokens = 0
    return (text) => {
      if (!text) return 0
      if (text.length <= budget) {
        const n = exact(text)
        budget -= text.length
        chars += text.length
        tokens += n
        return n
      }
      if (budget >= 256) {
        const head = text.slice(0, budget)
        const n = exact(head)
        chars += head.length
        tokens += n
        budget = 0
        return n + Math.ceil(((text.length - head.length) * tokens) / chars)
      }
      const ratio = chars > 0 ? tokens / chars : 1 / CHARS_PER_TOKEN
      return Math.ceil(text.length * ratio)
    }
  }
}

type Content = ChatRequest['messages'][number]['content']

function contentText(content: Content): string {
  if (typeof content === 'string') return content
  if (!content) return ''
  let text = ''
  for (const part of content) if (typeof part.text === 'string') text += part.text
  return text
}

/** What the answer may add: max_tokens (or max_completion_tokens) per choice, when the client set one. */
function allowance(max: number | null | undefined, n: number | null | undefined): number {
  return max ? max * (n ?? 1) : 0
}

/**
 * Chat: message text plus OpenAI's framing (about 3 tokens a message and 3 to prime the reply), tool call
 * arguments an assistant sent, and max_tokens when given.
 */
export function estimateChatTokens(req: ChatRequest, count: CountFn): number {
  return estimateChatPromptTokens(req, count) + allowance(req.max_completion_tokens ?? req.max_tokens, req.n)
}

/** The prompt part of estimateChatTokens: what the request sends, without what the answer may add. */
export function estimateChatPromptTokens(req: ChatRequest, count: CountFn): number {
  let n = 3
  for (const m of req.messages) {
    n += 3 + count(contentText(m.content))
    if ('name' in m && m.name) n += 1
    if (m.role === 'assistant' && m.tool_calls) {
      for (const call of m.tool_calls) n += count(call.function.name) + count(call.function.arguments)
    }
  }
  return n
}

/** Legacy completions: the prompt (token arrays count as they are) plus max_tokens, which defaults to 16 there. */
export function estimateCompletionTokens(req: CompletionRequest, count: CountFn): number {
  return estimateCompletionPromptTokens(req, count) + allowance(req.max_tokens ?? 16, req.n)
}

export function estimateCompletionPromptTokens(req: CompletionRequest, count: CountFn): number {
  const p = req.prompt
  let n = 0
  if (typeof p === 'string') n = count(p)
  else for (const item of p) n += typeof item === 'string' ? count(item) : Array.isArray(item) ? item.length : 1
  return Math.max(1, n)
}

export function estimateEmbeddingTokens(req: EmbeddingRequest, count: CountFn): number {
  const input = req.input
  if (typeof input === 'string') return Math.max(1, count(input))
  let n = 0
  for (const item of input) n += typeof item === 'string' ? count(item) : Array.isArray(item) ? item.length : 1
  return Math.max(1, n)
}
