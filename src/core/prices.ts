import type { ConfigSnapshot } from './config.js'
/**
 * What a request cost, from the tokens the upstream reported and the price of the model it ran on.
 *
 * A price is looked up for the provider and the *upstream* model (what the provider was asked for), most
 * specific first:
 *   1. a stored price (`proxy prices set MODEL --provider P`) for that provider;
 *   2. a stored price for every provider (`proxy prices set MODEL`);
 *   3. the provider's settings `price_in` / `price_out` (a blanket price for all its models);
 *   4. the built-in table below.
 * A stored price names a model exactly or by a prefix followed by '-', as the table does: 'gpt-4o-mini'
 * prices 'gpt-4o-mini-2024-07-18', 'claude-sonnet-4-5' prices 'claude-sonnet-4-5-20250929'; a vendor
 * prefix such as 'openai/gpt-4o' is ignored. A model none of them knows costs 0 and is reported as
 * unpriced (`proxy usage`, `proxy doctor`).
 *
 * Usage is priced as the upstream reported it: prompt tokens read from the cache at the cached-input
 * rate, tokens written to it at the cache-write rate, the rest at the input rate; completion tokens
 * (reasoning and thinking tokens are part of them) at the output rate. Where a price has no cached or
 * cache-write rate, those tokens cost the input rate.
 *
 * The built-in prices are the standard (non-batch, short-context) list prices in USD per 1M tokens,
 * transcribed from the vendors' public pricing pages (platform.openai.com/docs/pricing and
 * docs.anthropic.com/en/docs/about-claude/pricing) as published in late 2025 / early 2026; Anthropic's
 * cache reads cost 0.1x input and its (5-minute) cache writes 1.25x. Prices change: check them before
 * billing anyone, and store your own where they differ.
 */

export interface Price {
  /** USD per 1M prompt (input) tokens */
  input: number
  /** USD per 1M completion (output) tokens */
  output: number
  /** USD per 1M prompt tokens read from the upstream's cache; the input price when absent */
  cachedInput?: number
  /** USD per 1M prompt tokens written to the upstream's cache; the input price when absent */
  cacheWrite?: number
}

const claude = (input: number, output: number): Price => ({ input, output, cachedInput: round6(input * 0.1), cacheWrite: round6(input * 1.25) })
const openai = (input: number, output: number, cachedInput?: number): Price => (cachedInput === undefined ? { input, output } : { input, output, cachedInput })
function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6
}

export const PRICE_TABLE: Readonly<Record<string, Price>> = {
  // OpenAI: GPT-5 family
  'gpt-5': openai(1.25, 10, 0.125),
  'gpt-5.1': openai(1.25, 10, 0.125),
  'gpt-5-mini': openai(0.25, 2, 0.025),
  'gpt-5-nano': openai(0.05, 0.4, 0.005),
  // OpenAI: GPT-4.1 and GPT-4o
  'gpt-4.1': openai(2, 8, 0.5),
  'gpt-4.1-mini': openai(0.4, 1.6, 0.1),
  'gpt-4.1-nano': openai(0.1, 0.4, 0.025),
  'gpt-4o': openai(2.5, 10, 1.25),
  'gpt-4o-mini': openai(0.15, 0.6, 0.075),
  'chatgpt-4o-latest': openai(5, 15),
  'gpt-4-turbo': openai(10, 30),
  'gpt-4': openai(30, 60),
  'gpt-3.5-turbo': openai(0.5, 1.5),
  // OpenAI: o-series reasoning models (reasoning tokens are billed as output and reported in completion_tokens)
  'o1': openai(15, 60, 7.5),
  'o1-mini': openai(1.1, 4.4, 0.55),
  'o1-pro': openai(150, 600),
  'o3': openai(2, 8, 0.5),
  'o3-mini': openai(1.1, 4.4, 0.55),
  'o3-pro': openai(20, 80),
  'o4-mini': openai(1.1, 4.4, 0.275),
  // OpenAI: embeddings (input only)
  'text-embedding-3-small': openai(0.02, 0),
  'text-embedding-3-large': openai(0.13, 0),
  'text-embedding-ada-002': openai(0.1, 0),
  // Anthropic: Claude 4.x
  'claude-opus-4-5': claude(5, 25),
  'claude-opus-4-1': claude(15, 75),
  'claude-opus-4': claude(15, 75),
  'claude-sonnet-4-5': claude(3, 15),
  'claude-sonnet-4': claude(3, 15),
  'claude-haiku-4-5': claude(1, 5),
  // Anthropic: Claude 3.x, still common
  'claude-3-7-sonnet': claude(3, 15),
  'claude-3-5-sonnet': claude(3, 15),
  'claude-3-5-haiku': claude(0.8, 4),
  'claude-3-opus': claude(15, 75),
  'claude-3-haiku': claude(0.25, 1.25),
}

const TABLE_KEYS = Object.keys(PRICE_TABLE).sort((a, b) => b.length - a.length)
const memo = new Map<string, Price | null>()

/** The built-in price of an upstream model, or null when the table does not know it. */
export function tablePrice(upstreamModel: string): Price | null {
  const cached = memo.get(upstreamModel)
  if (cached !== undefined) return cached
  const key = matchKey(TABLE_KEYS, bareName(upstreamModel))
  const found = key ? PRICE_TABLE[key]! : null
  // Bounded: only upstream model names from the configuration reach here.
  if (memo.size < 10_000) memo.set(upstreamModel, found)
  return found
}

/** The longest key that names the model: equal to it, or a prefix of it followed by '-'. */
function matchKey(keys: readonly string[], name: string): string | null {
  for (const key of keys) if (name === key || (name.startsWith(key) && name.charCodeAt(key.length) === 45 /* '-' */)) return key
  return null
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

/** A price stored with `proxy prices set` (the `prices` table). */
export interface StoredPrice extends Price {
  model: string
  /** null: every provider */
  provider: string | null
}

export type PriceSource = 'store' | 'provider-setting' | 'built-in'

export interface ResolvedPrice {
  price: Price
  source: PriceSource
  /** the stored or built-in entry that matched (the model name or prefix) */
  entry: string
}

/** Token usage as it is priced: prompt tokens include the cached and cache-write ones (OpenAI's convention). */
export interface PricedUsage {
  prompt_tokens: number
  completion_tokens: number
  cached_tokens?: number
  cache_write_tokens?: number
}

const bareName = (model: string) => model.slice(model.lastIndexOf('/') + 1).toLowerCase()

/**
 * Prices for one configuration: the stored ones indexed once, then lookups per provider and upstream
 * model memoized (only names from the configuration and upstream answers reach here).
 */
export class PriceBook {
  readonly #byProvider = new Map<string, { keys: string[]; prices: Map<string, StoredPrice> }>()
  readonly #memo = new Map<string, ResolvedPrice | null>()

  constructor(stored: readonly StoredPrice[]) {
    for (const p of stored) {
      const scope = p.provider ?? ''
      let entry = this.#byProvider.get(scope)
      if (!entry) this.#byProvider.set(scope, (entry = { keys: [], prices: new Map() }))
      entry.prices.set(p.model.toLowerCase(), p)
    }
    for (const entry of this.#byProvider.values()) entry.keys = [...entry.prices.keys()].sort((a, b) => b.length - a.length)
  }

  /** The price of an upstream model on a provider (its settings for `price_in`/`price_out`), and where it comes from. */
  resolve(provider: string | null, upstreamModel: string | null, settings?: Record<string, unknown> | null): ResolvedPrice | null {
    if (!upstreamModel) return null
    const memoKey = `${provider ?? ''}\u0000${upstreamModel}`
    const known = this.#memo.get(memoKey)
    if (known !== undefined) return known
    const name = bareName(upstreamModel)
    let found: ResolvedPrice | null = null
    for (const scope of provider ? [provider, ''] : ['']) {
      const entry = this.#byProvider.get(scope)
      const key = entry ? matchKey(entry.keys, name) : null
      if (key) {
        const p = entry!.prices.get(key)!
        found = { price: p, source: 'store', entry: p.model }
        break
      }
    }
    if (!found && settings && (settings.price_in !== undefined || settings.price_out !== undefined)) {
      const p = priceFor(upstreamModel, settings)
      if (p) found = { price: p, source: 'provider-setting', entry: provider ?? '' }
    }
    if (!found) {
      const key = matchKey(TABLE_KEYS, name)
      if (key) found = { price: PRICE_TABLE[key]!, source: 'built-in', entry: key }
    }
    if (this.#memo.size < 10_000) this.#memo.set(memoKey, found)
    return found
  }
}

/** USD for a usage at a price (0 without a price), unrounded. */
export function costUsd(price: Price | null, usage: PricedUsage): number {
  return rawMicros(price, usage) / 1_000_000
}

/**
 * Micro-dollars (1e-6 USD, rounded up) for a usage at a price: the unit budgets count in, so that sums
 * stay exact integers in memory, in the store and in Redis.
 */
export function costMicros(price: Price | null, usage: PricedUsage): number {
  return Math.ceil(rawMicros(price, usage) - 1e-9)
}

function rawMicros(price: Price | null, usage: PricedUsage): number {
  if (!price) return 0
  const cached = Math.max(0, usage.cached_tokens ?? 0)
  const written = Math.max(0, usage.cache_write_tokens ?? 0)
  const plain = Math.max(0, usage.prompt_tokens - cached - written)
  // prices are per 1M tokens, so tokens x price is already micro-dollars
  return plain * price.input + cached * (price.cachedInput ?? price.input) + written * (price.cacheWrite ?? price.input) + usage.completion_tokens * price.output
}

/** Micro-dollars from US dollars as an operator types them ('5', '0.01'). */
export const microsFromUsd = (usd: number): number => Math.round(usd * 1_000_000)
export const usdFromMicros = (micros: number): number => micros / 1_000_000

const builtInOnly = new PriceBook([])

/** The price a configuration gives an upstream model on a provider (stored, provider setting, built-in). */
export function priceIn(snapshot: Pick<ConfigSnapshot, 'prices' | 'providers'>, provider: string | null, upstreamModel: string | null): ResolvedPrice | null {
  const settings = provider ? snapshot.providers.get(provider)?.settings : undefined
  return (snapshot.prices ?? builtInOnly).resolve(provider, upstreamModel, settings)
}
