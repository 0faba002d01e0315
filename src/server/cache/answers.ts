/**
 * What may be cached, per client API: which requests (several choices only when the policy allows,
 * nothing that reads another response the proxy stored unless the cache is per client), and which answers
 * (whole ones: never a truncated answer, nor a stream that did not reach its proper end).
 */
import type { CachePolicy } from '../../core/policy-schema.js'

type Json = Record<string, unknown>

export type CacheApi = 'chat' | 'completions' | 'embeddings' | 'responses' | 'messages'

/** The APIs the cache serves, by path (count_tokens and the rest are never cached). */
export const CACHE_APIS: ReadonlyMap<string, CacheApi> = new Map([
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/responses', 'responses'],
  ['/v1/messages', 'messages'],
])

/** Why a request is not cached although a cache policy applies (null: it may be). */
export function requestBypass(api: CacheApi, body: Json, policy: CachePolicy): string | null {
  if ((api === 'chat' || api === 'completions') && !policy.allow_multiple_choices) {
    if (num(body.n) > 1 || num(body.best_of) > 1) return 'n'
  }
  if (api === 'responses') {
    if (body.background === true) return 'background'
    // the answer depends on responses stored for one client: sharing it would skip that ownership check
    if (!policy.per_client && (typeof body.previous_response_id === 'string' || hasItemReference(body.input))) return 'stored_state'
  }
  return null
}

/** Whether a whole (JSON) answer is complete, so that it may be cached. */
export function wholeAnswer(api: CacheApi, answer: Json): boolean {
  switch (api) {
    case 'chat':
    case 'completions':
      return Array.isArray(answer.choices) && !answer.choices.some((c) => (c as Json)?.finish_reason === 'length')
    case 'embeddings':
      return Array.isArray(answer.data)
    case 'responses':
      return answer.status === 'completed'
    case 'messages':
      return !TRUNCATED_STOPS.has(answer.stop_reason as string)
  }
}

const TRUNCATED_STOPS = new Set(['max_tokens', 'pause_turn', 'model_context_window_exceeded'])

/** Follows a stream's events: whether it ended as a whole answer does. */
export class StreamVerdict {
  #truncated = false
  #ended: boolean

  constructor(readonly api: CacheApi) {
    // chat and completions streams have no final event of their own: a clean end of the stream is theirs
    this.#ended = api === 'chat' || api === 'completions'
  }

  see(event: Json): void {
    switch (this.api) {
      case 'chat':
      case 'completions': {
        const choices = event.choices
        if (Array.isArray(choices)) for (const c of choices) if ((c as Json)?.finish_reason === 'length') this.#truncated = true
        return
      }
      case 'responses':
        if (event.type === 'response.completed') this.#ended = true
        else if (event.type === 'response.incomplete' || event.type === 'response.failed' || event.type === 'error') this.#truncated = true
        return
      case 'messages':
        if (event.type === 'message_stop') this.#ended = true
        else if (event.type === 'message_delta' && TRUNCATED_STOPS.has((event.delta as Json | undefined)?.stop_reason as string)) this.#truncated = true
        else if (event.type === 'error') this.#truncated = true
        return
      default:
        this.#truncated = true
    }
  }

  get whole(): boolean {
    return this.#ended && !this.#truncated
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0)

function hasItemReference(input: unknown): boolean {
  return Array.isArray(input) && input.some((item) => (item as Json)?.type === 'item_reference')
}
