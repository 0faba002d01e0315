/**
 * Reasoning in the gateway's own (OpenAI chat) shape, shared by every ingress translator and adapter.
 *
 * Requests carry OpenAI's `reasoning_effort`. Answers carry the text of the model's reasoning as
 * `reasoning` on the message (or on a stream delta), as Ollama, vLLM and OpenRouter send it; an
 * upstream that says `reasoning_content` (DeepSeek) is read as the same thing. Anthropic's thinking
 * blocks also have a signature that must go back unchanged on the next turn: they travel whole as
 * `thinking_blocks` (on a message, a delta, or an assistant message of a request).
 */
export type ReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high'

export type ThinkingBlock = { type: 'thinking'; thinking: string; signature: string } | { type: 'redacted_thinking'; data: string }

/** Anthropic's smallest thinking budget is 1,024 tokens. */
export const MIN_THINKING_BUDGET = 1024

const BUDGETS: Record<Exclude<ReasoningEffort, 'none'>, number> = { minimal: 1024, low: 2048, medium: 8192, high: 24576 }

/** An effort as a thinking budget (Anthropic `budget_tokens`); null for 'none'. */
export function effortToBudget(effort: ReasoningEffort): number | null {
  return effort === 'none' ? null : BUDGETS[effort]
}

/** A thinking budget as the nearest effort at or above it. */
export function budgetToEffort(budget: number): Exclude<ReasoningEffort, 'none'> {
  if (budget <= BUDGETS.minimal) return 'minimal'
  if (budget <= BUDGETS.low) return 'low'
  if (budget <= BUDGETS.medium) return 'medium'
  return 'high'
}

/** The reasoning text of an upstream message or delta, under either name. */
export function reasoningText(m: { reasoning?: unknown; reasoning_content?: unknown } | null | undefined): string | undefined {
  if (!m) return undefined
  if (typeof m.reasoning === 'string') return m.reasoning
  if (typeof m.reasoning_content === 'string') return m.reasoning_content
  return undefined
}
