/**
 * A whole OpenAI answer as the chunks its stream would have carried. Some OpenAI-compatible servers
 * answer `stream: true` with plain JSON; the client asked for a stream and gets a well-formed one: per
 * choice a role+content chunk, one chunk per tool call, a finish chunk, then the usage chunk.
 */
import type { ChatCompletion, ChatCompletionChunk, Completion } from '../core/openai-schema.js'

type Delta = ChatCompletionChunk['choices'][number]['delta']

/** Message fields that travel in a delta as they are: reasoning under either name, thinking blocks, refusals, legacy function calls. */
const PASSED_FIELDS = ['refusal', 'reasoning', 'reasoning_content', 'thinking_blocks', 'function_call'] as const

/** The chunks of a chat answer; null when the value is not one. */
export function chatAnswerChunks(answer: unknown): ChatCompletionChunk[] | null {
  if (!hasChoices(answer) || !answer.choices.every((c) => isObject((c as { message?: unknown }).message))) return null
  const a = answer as ChatCompletion
  const base = header(a, 'chat.completion.chunk')
  const out: ChatCompletionChunk[] = []
  const chunk = (index: number, delta: Delta, finish: ChatCompletionChunk['choices'][number]['finish_reason'], logprobs: unknown = null): ChatCompletionChunk => ({
    ...base,
    choices: [{ index, delta, finish_reason: finish, logprobs }],
  })
  for (const [position, choice] of a.choices.entries()) {
    const index = typeof choice.index === 'number' ? choice.index : position
    const m = choice.message
    const first: Record<string, unknown> = { role: 'assistant', content: m.content ?? (m.tool_calls?.length ? null : '') }
    for (const field of PASSED_FIELDS) if (m[field] !== undefined && m[field] !== null) first[field] = m[field]
    out.push(chunk(index, first as Delta, null, choice.logprobs ?? null))
    for (const [i, call] of (m.tool_calls ?? []).entries()) {
      out.push(chunk(index, { tool_calls: [{ index: i, id: call.id, type: 'function', function: { name: call.function?.name ?? '', arguments: call.function?.arguments ?? '' } }] }, null))
    }
    out.push(chunk(index, {}, choice.finish_reason ?? 'stop'))
  }
  if (a.usage) out.push({ ...base, choices: [], usage: a.usage })
  return out
}

/** The chunks of a legacy completion answer; null when the value is not one. */
export function completionAnswerChunks(answer: unknown): Completion[] | null {
  if (!hasChoices(answer) || !answer.choices.every((c) => isObject(c) && typeof (c as { text?: unknown }).text === 'string')) return null
  const a = answer as Completion
  const base = header(a, 'text_completion')
  const out: Completion[] = []
  for (const [position, choice] of a.choices.entries()) {
    const index = typeof choice.index === 'number' ? choice.index : position
    out.push({ ...base, choices: [{ index, text: choice.text, finish_reason: null, logprobs: choice.logprobs ?? null }] })
    out.push({ ...base, choices: [{ index, text: '', finish_reason: choice.finish_reason ?? 'stop', logprobs: null }] })
  }
  if (a.usage) out.push({ ...base, choices: [], usage: a.usage })
  return out
}

function header<O extends string>(a: { id?: unknown; created?: unknown; model?: unknown; system_fingerprint?: unknown; service_tier?: unknown }, object: O) {
  const base = {
    id: typeof a.id === 'string' ? a.id : '',
    object,
    created: typeof a.created === 'number' ? a.created : Math.floor(Date.now() / 1000),
    model: typeof a.model === 'string' ? a.model : '',
  } as { id: string; object: O; created: number; model: string; system_fingerprint?: string | null; service_tier?: unknown }
  if (typeof a.system_fingerprint === 'string' || a.system_fingerprint === null) base.system_fingerprint = a.system_fingerprint
  if (a.service_tier !== undefined) base.service_tier = a.service_tier
  return base
}

function hasChoices(value: unknown): value is { choices: unknown[] } {
  return isObject(value) && Array.isArray((value as { choices?: unknown }).choices)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}
