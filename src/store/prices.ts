/**
 * What a request cost, in US dollars, from the tokens the upstream reported.
 *
 * The built-in table is matched against the *upstream* model (what the provider was asked for), by the
 * longest entry that equals it or is a prefix of it followed by '-': 'gpt-4o-mini-2024-07-18' is
 * 'gpt-4o-mini', 'claude-sonnet-4-5-20250929' is 'claude-sonnet-4-5'. A vendor prefix such as
 * 'openai/gpt-4o' (OpenRouter-style ids) is ignored. Models the table does not know cost 0.
 *
 * Override: a provider's settings `price_in` / `price_out` (USD per 1M input / output tokens) replace the
 * table for every model of that provider, e.g. `proxy providers add groq --type openai-compatible
 * --setting price_in=0.59 --setting price_out=0.79`. A local model can be priced at 0 the same way.
 *
 * Prices are the standard (non-batch, uncached, short-context) list prices in USD per 1M tokens,
 * transcribed from the vendors' public pricing pages (platform.openai.com/docs/pricing and
 * docs.anthropic.com/en/docs/about-claude/pricing) as published in late 2025 / early 2026. Cached-input
 * discounts, batch discounts and long-context surcharges are not modelled. Prices change: check them
 * before billing anyone, and override per provider where they differ.
 */

export interface Price {
  /** USD per 1M prompt (input) tokens */
  input: number
  /** USD per 1M completion (output) tokens */
  output: number
}

export const PRICE_TABLE: Readonly<Record<string, Price>> = {
  // OpenAI: GPT-5 family
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5.1': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
  // OpenAI: GPT-4.1 and GPT-4o
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'chatgpt-4o-latest': { input: 5, output: 15 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  // OpenAI: o-series reasoning models (reasoning tokens are billed as output and reported in completion_tokens)
  'o1': { input: 15, output: 60 },
  'o1-mini': { input: 1.1, output: 4.4 },
  'o1-pro': { input: 150, output: 600 },
  'o3': { input: 2, output: 8 },
  'o3-mini': { input: 1.1, output: 4.4 },
  'o3-pro': { input: 20, output: 80 },
  'o4-mini': { input: 1.1, output: 4.4 },
  // OpenAI: embeddings (input only)
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  'text-embedding-ada-002': { input: 0.1, output: 0 },
  // Anthropic: Claude 4.x
  'claude-opus-4-5': { input: 5, output: 25 },
  'claude-opus-4-1': { input: 15, output: 75 },
  'claude-opus-4': { input: 15, output: 75 },
  'claude-sonnet-4-5': { input: 3, output: 15 },
  'claude-sonnet-4': { input: 3, output: 15 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  // Anthropic: Claude 3.x, still common
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-3-opus': { input: 15, output: 75 },
  'claude-3-haiku': { input: 0.25, output: 1.25 },
}

const TABLE_KEYS = Object.keys(PRICE_TABLE).sort((a, b) => b.length - a.length)
const memo = new Map<string, Price | null>()

/** The built-in price of an upstream model, or null when the table does not know it. */
export function tablePrice(upstreamModel: string): Price | null {
  const cached = memo.get(upstreamModel)
  if (cached !== undefined) return cached
  const name = upstreamModel.slice(upstreamModel.lastIndexOf('/') + 1).toLowerCase()
  let found: Price | null = null
  for (const key of TABLE_KEYS) {
    if (name === key || (name.startsWith(key) && name.charCodeAt(key.length) === 45 /* '-' */)) {
      found = PRICE_TABLE[key]!
      break
    }
  }
  // Bounded: only upstream model names from the configuration reach here.
  if (memo.size < 10_000) memo.set(upstreamModel, found)
  return found
}

/** `price_in` / `price_out` from a provider's settings, when both or either are set (the other defaults to the table, else 0). */
export function priceFor(upstreamModel: string | null, providerSettings?: Record<string, unknown> | null): Price | null {
  const table = upstreamModel ? tablePrice(upstreamModel) : null
  const pin = providerSettings?.price_in
  const pout = providerSettings?.price_out
  const hasIn = typeof pin === 'number' && Number.isFinite(pin) && pin >= 0
  const hasOut = typeof pout === 'number' && Number.isFinite(pout) && pout >= 0
  if (!hasIn && !hasOut) return table
  return { input: hasIn ? (pin as number) : (table?.input ?? 0), output: hasOut ? (pout as number) : (table?.output ?? 0) }
}

export function costUsd(price: Price | null, promptTokens: number, completionTokens: number): number {
  if (!price) return 0
  return (promptTokens * price.input + completionTokens * price.output) / 1_000_000
}
