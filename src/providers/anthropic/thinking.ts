/**
 * OpenAI's reasoning_effort as Anthropic extended thinking (`thinking: {type:'enabled', budget_tokens}`),
 * under the rules Anthropic sets for it (platform.claude.com, extended thinking, "Feature compatibility"):
 * a budget of at least 1,024 tokens below max_tokens; temperature only 1, top_p only from 0.95; no forced
 * tool use; no prefilled answer; and in a tool loop, the assistant turn that called the tools must open
 * with its thinking blocks, signature intact. Where a request breaks a rule the client cannot see, the
 * adapter gives way rather than fail: the sampling parameter is left out, or thinking is, and either is
 * reported through `warn` (x-proxy-dropped-params).
 */
import { invalidRequest } from '../../core/errors.js'
import { effortToBudget, MIN_THINKING_BUDGET, type ReasoningEffort } from '../../core/reasoning.js'
import type { MessagesRequest, ThinkingBlockParam } from './wire.js'

const EFFORTS = new Set<string>(['none', 'minimal', 'low', 'medium', 'high'])

/** The lowest top_p Anthropic accepts with thinking on. */
const MIN_TOP_P = 0.95

/** An assistant message's `thinking_blocks` as Anthropic blocks, checked so a bad one is the client's 400. */
export function thinkingBlocksOf(raw: unknown, at: string): ThinkingBlockParam[] {
  if (raw == null) return []
  if (!Array.isArray(raw)) throw invalidRequest(`Invalid value for '${at}': expected an array of thinking blocks.`, at, 'invalid_value')
  return raw.map((b: Record<string, unknown>, j) => {
    if (b?.type === 'thinking' && typeof b.thinking === 'string' && typeof b.signature === 'string') return { type: 'thinking', thinking: b.thinking, signature: b.signature }
    if (b?.type === 'redacted_thinking' && typeof b.data === 'string') return { type: 'redacted_thinking', data: b.data }
    throw invalidRequest(
      `Invalid value for '${at}[${j}]': a thinking block is {type:'thinking', thinking, signature} or {type:'redacted_thinking', data}, as the answer gave it.`,
      `${at}[${j}]`,
      'invalid_value',
    )
  })
}

export interface ThinkingInput {
  effort: unknown
  /** the client's max_completion_tokens / max_tokens, when it sent one */
  clientMaxTokens: number | null | undefined
  defaultMaxTokens: number
  warn: (param: string) => void
}

/**
 * Turns thinking on in a mapped request when the effort asks for it and the request allows it; otherwise
 * takes out the thinking blocks of earlier turns, which only a thinking request may carry.
 */
export function applyThinking(body: MessagesRequest, input: ThinkingInput): void {
  const budget = budgetFor(input)
  if (budget === null || !thinkingAllowed(body, input.warn)) {
    stripThinkingBlocks(body)
    return
  }
  body.thinking = { type: 'enabled', budget_tokens: budget }
  if (input.clientMaxTokens == null) {
    // No limit from the client: max_tokens is raised by the budget, so the answer keeps the room it has
    // without thinking (Anthropic counts thinking into max_tokens).
    body.max_tokens = input.defaultMaxTokens + budget
  }
  if (body.temperature !== undefined && body.temperature !== 1) {
    delete body.temperature
    input.warn('temperature')
  }
  if (body.top_p !== undefined && body.top_p < MIN_TOP_P) {
    delete body.top_p
    input.warn('top_p')
  }
}

/** The budget for the effort, fitted under the client's max_tokens; null when there is no thinking to do. */
function budgetFor(input: ThinkingInput): number | null {
  const effort = input.effort
  if (effort == null) return null
  if (typeof effort !== 'string' || !EFFORTS.has(effort)) {
    throw invalidRequest(`Invalid value for 'reasoning_effort': expected one of none, minimal, low, medium, high.`, 'reasoning_effort', 'invalid_value')
  }
  const budget = effortToBudget(effort as ReasoningEffort)
  const max = input.clientMaxTokens
  if (budget === null || max == null || budget < max) return budget
  // The client's max_tokens bounds reasoning and answer together (as OpenAI's max_completion_tokens does),
  // so it is kept and the budget clamped under it, to half of it; below Anthropic's minimum budget there
  // is no room to think at all.
  if (max <= MIN_THINKING_BUDGET) {
    input.warn('reasoning_effort')
    return null
  }
  return Math.max(MIN_THINKING_BUDGET, Math.floor(max / 2))
}

function thinkingAllowed(body: MessagesRequest, warn: (param: string) => void): boolean {
  const forced = body.tool_choice?.type === 'any' || body.tool_choice?.type === 'tool'
  const last = body.messages.at(-1)
  const prefilled = last?.role === 'assistant'
  // A tool loop continues the assistant turn that called the tools: it must open with its thinking, which
  // only an answer from Anthropic with thinking on has (not one from another provider, or without thinking).
  const caller = body.messages.at(-2)
  const loopWithoutThinking =
    last?.role === 'user' && last.content.some((b) => b.type === 'tool_result') && caller?.role === 'assistant' && caller.content[0]?.type !== 'thinking' && caller.content[0]?.type !== 'redacted_thinking'
  if (forced || prefilled || loopWithoutThinking) {
    warn('reasoning_effort')
    return false
  }
  return true
}

function stripThinkingBlocks(body: MessagesRequest): void {
  for (const turn of body.messages) {
    if (turn.role === 'assistant') turn.content = turn.content.filter((b) => b.type !== 'thinking' && b.type !== 'redacted_thinking')
  }
}
