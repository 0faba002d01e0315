import type SQLite from 'better-sqlite3'
import { sql, type Kysely } from 'kysely'
import type { Database, UsageTable } from '../schema.js'

/** What one batch adds to one (day, client, model) row: the row's own shape, as increments. */
export type UsageDelta = UsageTable

/** Adds one delta to its (day, client, model) row; named parameters, one object per delta. */
export const USAGE_UPSERT_SQL = `
    INSERT INTO usage (day, client, model, requests, errors, prompt_tokens, completion_tokens, cost_usd, cache_hits, saved_usd)
    VALUES (@day, @client, @model, @requests, @errors, @prompt_tokens, @completion_tokens, @cost_usd, @cache_hits, @saved_usd)
    ON CONFLICT (day, client, model) DO UPDATE SET
      requests = requests + excluded.requests,
      errors = errors + excluded.errors,
      prompt_tokens = prompt_tokens + excluded.prompt_tokens,
      completion_tokens = completion_tokens + excluded.completion_tokens,
      cost_usd = cost_usd + excluded.cost_usd,
      cache_hits = cache_hits + excluded.cache_hits,
      saved_usd = saved_usd + excluded.saved_usd`

export type UsageGrouping = 'client' | 'model' | 'day'

export interface UsageQuery {
  by: UsageGrouping
  /** YYYY-MM-DD (UTC): only days from this one on */
  sinceDay?: string
  client?: string
  model?: string
}

export interface UsageLine {
  key: string
  requests: number
  errors: number
  promptTokens: number
  completionTokens: number
  costUsd: number
  /** requests answered from the response cache, and the cost they saved */
  cacheHits: number
  savedUsd: number
}

export async function queryUsage(db: Kysely<Database>, query: UsageQuery): Promise<UsageLine[]> {
  const column = query.by === 'client' ? 'client' : query.by === 'model' ? 'model' : 'day'
  let q = db
    .selectFrom('usage')
    .select([
      sql<string>`${sql.ref(column)}`.as('key'),
      (eb) => eb.fn.sum<number>('requests').as('requests'),
      (eb) => eb.fn.sum<number>('errors').as('errors'),
      (eb) => eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
      (eb) => eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
      (eb) => eb.fn.sum<number>('cost_usd').as('cost_usd'),
      (eb) => eb.fn.sum<number>('cache_hits').as('cache_hits'),
      (eb) => eb.fn.sum<number>('saved_usd').as('saved_usd'),
    ])
    .groupBy(column)
  if (query.sinceDay) q = q.where('day', '>=', query.sinceDay)
  if (query.client) q = q.where('client', '=', query.client)
  if (query.model) q = q.where('model', '=', query.model)
  q = query.by === 'day' ? q.orderBy(column) : q.orderBy('cost_usd', 'desc').orderBy(column)
  const rows = await q.execute()
  return rows.map((r) => ({
    key: r.key,
    requests: Number(r.requests),
    errors: Number(r.errors),
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    costUsd: Number(r.cost_usd),
    cacheHits: Number(r.cache_hits),
    savedUsd: Number(r.saved_usd),
  }))
}
