/**
 * Prices stored with `proxy prices set` (migration 0010): USD per 1M tokens for a model, for one provider
 * or for every provider. They override the provider settings' price_in/price_out and the built-in table
 * (src/core/prices.ts says in which order).
 */
import type { Kysely } from 'kysely'
import { invalidRequest, notFound } from '../../core/errors.js'
import type { StoredPrice } from '../../core/prices.js'
import { nowIso } from '../time.js'
import type { Database } from '../schema.js'

export interface PriceInput {
  model: string
  provider?: string | null
  input: number
  output: number
  cachedInput?: number | null
  cacheWrite?: number | null
}

const MAX_PRICE = 100_000

function checkRate(name: string, value: number | null | undefined): void {
  if (value === null || value === undefined) return
  if (!Number.isFinite(value) || value < 0 || value > MAX_PRICE) throw invalidRequest(`--${name} must be USD per 1M tokens, from 0 to ${MAX_PRICE}, not ${value}.`, name)
}

export async function setPrice(db: Kysely<Database>, input: PriceInput): Promise<StoredPrice> {
  const model = input.model.trim()
  if (model.length === 0 || model.length > 200 || /\s/.test(model)) throw invalidRequest(`'${input.model}' is not a model name.`, 'model')
  checkRate('input', input.input)
  checkRate('output', input.output)
  checkRate('cached-input', input.cachedInput)
  checkRate('cache-write', input.cacheWrite)
  const provider = input.provider ?? ''
  if (provider && !(await db.selectFrom('providers').select('id').where('name', '=', provider).executeTakeFirst())) {
    throw notFound(`No provider named '${provider}'. List them with 'proxy providers ls'.`)
  }
  const row = { model, provider, input: input.input, output: input.output, cached_input: input.cachedInput ?? null, cache_write: input.cacheWrite ?? null, updated_at: nowIso() }
  await db
    .insertInto('prices')
    .values(row)
    .onConflict((oc) => oc.columns(['model', 'provider']).doUpdateSet({ input: row.input, output: row.output, cached_input: row.cached_input, cache_write: row.cache_write, updated_at: row.updated_at }))
    .execute()
  return storedPrice(row)
}

/** Removes a stored price; false when there was none. */
export async function removePrice(db: Kysely<Database>, model: string, provider?: string | null): Promise<boolean> {
  const res = await db.deleteFrom('prices').where('model', '=', model).where('provider', '=', provider ?? '').executeTakeFirst()
  return Number(res.numDeletedRows) > 0
}

export async function listPrices(db: Kysely<Database>): Promise<StoredPrice[]> {
  const rows = await db.selectFrom('prices').selectAll().orderBy('model').orderBy('provider').execute()
  return rows.map(storedPrice)
}

export function storedPrice(r: { model: string; provider: string; input: number; output: number; cached_input: number | null; cache_write: number | null }): StoredPrice {
  const p: StoredPrice = { model: r.model, provider: r.provider === '' ? null : r.provider, input: Number(r.input), output: Number(r.output) }
  if (r.cached_input !== null) p.cachedInput = Number(r.cached_input)
  if (r.cache_write !== null) p.cacheWrite = Number(r.cache_write)
  return p
}
