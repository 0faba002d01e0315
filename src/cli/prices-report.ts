/** What `proxy prices ls` and `proxy doctor` show: each routed (provider, upstream model) and each stored price, with its source. */
import type { Kysely } from 'kysely'
import { PriceBook, type PriceSource } from '../core/prices.js'
import { listPrices } from '../store/repos/prices.js'
import type { Database } from '../store/schema.js'

export interface PriceLine {
  model: string
  /** null: a stored price for every provider */
  provider: string | null
  input: number | null
  output: number | null
  cachedInput: number | null
  cacheWrite: number | null
  /** null: no price is known (requests count as $0) */
  source: PriceSource | null
}

export async function priceReport(db: Kysely<Database>): Promise<PriceLine[]> {
  const [stored, targets] = await Promise.all([
    listPrices(db),
    db
      .selectFrom('route_targets')
      .innerJoin('providers', 'providers.id', 'route_targets.provider_id')
      .select(['route_targets.upstream_model as model', 'providers.name as provider', 'providers.settings as settings'])
      .distinct()
      .orderBy('providers.name')
      .orderBy('route_targets.upstream_model')
      .execute(),
  ])
  const book = new PriceBook(stored)
  const lines: PriceLine[] = []
  const seen = new Set<string>()
  for (const t of targets) {
    if (t.model.includes('*') || t.model.includes('$')) continue
    const key = `${t.provider}\u0000${t.model}`
    if (seen.has(key)) continue
    seen.add(key)
    const r = book.resolve(t.provider, t.model, JSON.parse(t.settings) as Record<string, unknown>)
    lines.push({ model: t.model, provider: t.provider, input: r?.price.input ?? null, output: r?.price.output ?? null, cachedInput: r?.price.cachedInput ?? null, cacheWrite: r?.price.cacheWrite ?? null, source: r?.source ?? null })
  }
  // stored prices no route uses (yet) are shown too
  for (const p of stored) {
    if (lines.some((l) => l.source === 'store' && l.model.toLowerCase().startsWith(p.model.toLowerCase()) && (p.provider === null || l.provider === p.provider))) continue
    lines.push({ model: p.model, provider: p.provider, input: p.input, output: p.output, cachedInput: p.cachedInput ?? null, cacheWrite: p.cacheWrite ?? null, source: 'store' })
  }
  return lines
}

/** The routed (provider/upstream model) pairs with no known price. */
export async function unpricedTargets(db: Kysely<Database>): Promise<string[]> {
  return (await priceReport(db)).filter((l) => l.source === null).map((l) => `${l.provider}/${l.model}`)
}
