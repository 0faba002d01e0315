/**
 * The text a stream wrote to its client (content, reasoning, refusals, tool-call names and arguments of
 * chat chunks; the text of legacy completion chunks), kept so its tokens can be counted when the stream
 * ends without the upstream's usage: the client left early, or the upstream reports none.
 *
 * Per chunk this only keeps references to strings the chunk already holds; nothing is joined or counted
 * until the end, and only then if no usage came. Past `budgetChars` only the length is kept, and the
 * count is extrapolated from the kept text, as the limiter's estimates are.
 */
import { reasoningText } from '../core/reasoning.js'
import { DEFAULT_BUDGET_CHARS, type CountFn } from '../limits/estimate.js'

interface StreamedChoice {
  delta?: {
    content?: string | null
    refusal?: string | null
    reasoning?: unknown
    reasoning_content?: unknown
    tool_calls?: Array<{ function?: { name?: string; arguments?: string } }> | null
  } | null
  text?: string | null
}

export class StreamedText {
  readonly #pieces: string[] = []
  readonly #budget: number
  #kept = 0
  #beyond = 0

  constructor(budgetChars = DEFAULT_BUDGET_CHARS) {
    this.#budget = budgetChars
  }

  /** Notes the text of one chunk about to be written. */
  add(chunk: { choices?: unknown[] | null }): void {
    const choices = chunk.choices as StreamedChoice[] | null | undefined
    if (!choices) return
    for (let i = 0; i < choices.length; i++) {
      const choice = choices[i]!
      const delta = choice.delta
      if (!delta) {
        if (typeof choice.text === 'string') this.keep(choice.text)
        continue
      }
      if (typeof delta.content === 'string') this.keep(delta.content)
      if (typeof delta.refusal === 'string') this.keep(delta.refusal)
      const reasoning = reasoningText(delta)
      if (reasoning !== undefined) this.keep(reasoning)
      const calls = delta.tool_calls
      if (calls) {
        for (let j = 0; j < calls.length; j++) {
          const fn = calls[j]!.function
          if (!fn) continue
          if (typeof fn.name === 'string') this.keep(fn.name)
          if (typeof fn.arguments === 'string') this.keep(fn.arguments)
        }
      }
    }
  }

  /** The tokens of everything noted so far. */
  tokens(count: CountFn): number {
    if (this.#kept === 0) return 0
    const text = this.#pieces.join('')
    const n = count(text)
    return this.#beyond === 0 ? n : n + Math.ceil((this.#beyond * n) / text.length)
  }

  /** Notes one piece of text the stream wrote (any API's event). */
  keep(text: string): void {
    if (text.length === 0) return
    if (this.#kept < this.#budget) {
      this.#pieces.push(text)
      this.#kept += text.length
    } else {
      this.#beyond += text.length
    }
  }
}
