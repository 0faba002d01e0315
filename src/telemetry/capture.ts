/**
 * Content capture: the request body and the response for the audit trail, when an operator turned it on
 * (per client or globally). Everything is capped in size. For streams the reassembled answer is kept
 * (text per choice, tool calls, finish reason), never the raw SSE, and it is bounded while it grows.
 * Serialising happens when the audit writer flushes, not on the request path.
 */

export const DEFAULT_CAPTURE_MAX_BYTES = 32 * 1024

/** Replaces the configured secrets in text (telemetry/redact.ts SecretScrubber). */
export interface Scrub {
  scrub(text: string): string
}

interface ChoiceText {
  index: number
  content: string
  finishReason: string | null
  toolCalls: Array<{ id?: string; name: string; arguments: string }> | null
}

export class BodyCapture {
  readonly request: unknown
  /** a non-streamed answer, as the client received it */
  response: unknown = null
  readonly #maxBytes: number
  #choices: ChoiceText[] | null = null
  #streamMeta: { id?: unknown; model?: unknown } | null = null
  /** characters kept from the stream so far; past the cap, further text is only counted */
  #kept = 0
  #droppedChars = 0

  constructor(request: unknown, maxBytes: number) {
    this.request = request
    this.#maxBytes = maxBytes
  }

  /** Adds one stream chunk (chat or legacy completion) to the reassembled answer. */
  chunk(chunk: unknown): void {
    if (!chunk || typeof chunk !== 'object') return
    const c = chunk as { id?: unknown; model?: unknown; choices?: unknown }
    this.#streamMeta ??= { id: c.id, model: c.model }
    if (!Array.isArray(c.choices)) return
    for (const raw of c.choices as Array<Record<string, unknown>>) {
      if (!raw || typeof raw !== 'object') continue
      const index = typeof raw.index === 'number' ? raw.index : 0
      const choice = this.#choice(index)
      if (typeof raw.finish_reason === 'string') choice.finishReason = raw.finish_reason
      const delta = raw.delta as { content?: unknown; tool_calls?: unknown; refusal?: unknown } | undefined
      if (typeof raw.text === 'string') this.#append(choice, raw.text)
      if (!delta || typeof delta !== 'object') continue
      if (typeof delta.content === 'string') this.#append(choice, delta.content)
      if (typeof delta.refusal === 'string') this.#append(choice, delta.refusal)
      if (Array.isArray(delta.tool_calls)) {
        for (const t of delta.tool_calls as Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>) {
          choice.toolCalls ??= []
          const at = typeof t.index === 'number' ? t.index : choice.toolCalls.length
          const call = (choice.toolCalls[at] ??= { name: '', arguments: '' })
          if (t.id) call.id = t.id
          if (t.function?.name) call.name += t.function.name
          if (typeof t.function?.arguments === 'string') {
            const room = this.#room(t.function.arguments.length)
            call.arguments += room === t.function.arguments.length ? t.function.arguments : t.function.arguments.slice(0, room)
          }
        }
      }
    }
  }

  /**
   * The captured bodies as text, scrubbed of the configured secrets (a client may paste an upstream key
   * into a prompt; an upstream may echo one) before they are cut to size, so no part of a secret stays.
   */
  requestText(scrubber?: Scrub): string | null {
    return this.request === undefined ? null : truncateUtf8(scrubbed(safeJson(this.request), scrubber), this.#maxBytes)
  }

  responseText(scrubber?: Scrub): string | null {
    if (this.#choices) {
      const value = {
        stream: true,
        id: this.#streamMeta?.id,
        model: this.#streamMeta?.model,
        choices: this.#choices.filter(Boolean).map((c) => ({
          index: c.index,
          content: c.content,
          finish_reason: c.finishReason,
          ...(c.toolCalls ? { tool_calls: c.toolCalls.filter(Boolean) } : {}),
        })),
        ...(this.#droppedChars > 0 ? { truncated_chars: this.#droppedChars } : {}),
      }
      return truncateUtf8(scrubbed(JSON.stringify(value), scrubber), this.#maxBytes)
    }
    if (this.response === null || this.response === undefined) return null
    return truncateUtf8(scrubbed(safeJson(summarizeEmbeddings(this.response)), scrubber), this.#maxBytes)
  }

  #choice(index: number): ChoiceText {
    this.#choices ??= []
    return (this.#choices[index] ??= { index, content: '', finishReason: null, toolCalls: null })
  }

  #append(choice: ChoiceText, text: string): void {
    const room = this.#room(text.length)
    choice.content += room === text.length ? text : text.slice(0, room)
  }

  /** How many of `n` more characters fit under the cap (UTF-16 units; the byte cap is applied at the end). */
  #room(n: number): number {
    const room = Math.max(0, Math.min(n, this.#maxBytes - this.#kept))
    this.#kept += room
    this.#droppedChars += n - room
    return room
  }
}

/** An embeddings answer is mostly floats nobody reads in an audit trail: keep its shape, not the vectors. */
function summarizeEmbeddings(value: unknown): unknown {
  const v = value as { object?: unknown; data?: unknown }
  if (v && v.object === 'list' && Array.isArray(v.data) && (v.data[0] as { object?: unknown } | undefined)?.object === 'embedding') {
    const first = (v.data[0] as { embedding?: unknown }).embedding
    const dims = Array.isArray(first) ? `${first.length} dimensions` : 'base64'
    return { ...v, data: `[${v.data.length} embedding(s), ${dims}, omitted]` }
  }
  return value
}

function scrubbed(text: string, scrubber: Scrub | undefined): string {
  return scrubber ? scrubber.scrub(text) : text
}

function safeJson(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? '')
  } catch {
    return '[not serializable]'
  }
}

/** Cuts text to at most `maxBytes` UTF-8 bytes (on a character boundary) and says so with a marker. */
export function truncateUtf8(text: string, maxBytes: number): string {
  // Fast path: even at 3 bytes per UTF-16 unit it fits.
  if (text.length * 3 <= maxBytes) return text
  const total = Buffer.byteLength(text, 'utf8')
  if (total <= maxBytes) return text
  let kept = Buffer.from(text, 'utf8').subarray(0, maxBytes).toString('utf8')
  if (kept.endsWith('\uFFFD')) kept = kept.slice(0, -1)
  return `${kept}…[truncated by proxy: ${total - Buffer.byteLength(kept, 'utf8')} of ${total} bytes cut]`
}
