import { sql, type Kysely } from 'kysely'
import type { Database, UsageTable } from '../schema.js'

/** What one batch adds to one (day, client, model) row: the row's own shape, as increments. */
export type UsageDelta = UsageTable

/** The columns of a usage delta, in the order of a positional VALUES row (PostgreSQL's writer). */
export const USAGE_COLUMNS = ['day', 'client', 'model', 'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cost_usd', 'cache_hits', 'saved_usd'] as const satisfies ReadonlyArray<keyof UsageDelta>

/** Adds deltas to their (day, client, model) rows; `values` is the VALUES list (placeholders of the dialect). */
export function usageUpsertSql(values: string): string {
  return `
    INSERT INTO usage (${USAGE_COLUMNS.join(', ')})
    VALUES ${values}
    ON CONFLICT (day, client, model) DO UPDATE SET
      ${USAGE_COLUMNS.slice(3).map((c) => `${c} = usage.${c} + excluded.${c}`).join(',\n      ')}`
}

/** One delta per statement run, named parameters (SQLite's writer binds one object per delta). */
export const USAGE_UPSERT_SQL = usageUpsertSql(`(${USAGE_COLUMNS.map((c) => `@${c}`).join(', ')})`)

export type UsageGrouping = 'client' | 'model' | 'day' | 'team'

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
  // a team's usage is its clients' (by their current team)
  const key =
    query.by === 'team'
      ? sql<string>`coalesce(${sql.ref('teams.name')}, '(no team)')`
      : sql<string>`${sql.ref(`usage.${query.by === 'client' ? 'client' : query.by === 'model' ? 'model' : 'day'}`)}`
  let q = db
    .selectFrom('usage')
    .leftJoin('clients', 'clients.name', 'usage.client')
    .leftJoin('teams', 'teams.id', 'clients.team_id')
    .select([
      key.as('key'),
      (eb) => eb.fn.sum<number>('usage.requests').as('requests'),
      (eb) => eb.fn.sum<number>('usage.errors').as('errors'),
      (eb) => eb.fn.sum<number>('usage.prompt_tokens').as('prompt_tokens'),
      (eb) => eb.fn.sum<number>('usage.completion_tokens').as('completion_tokens'),
      (eb) => eb.fn.sum<number>('usage.cost_usd').as('cost_usd'),
      (eb) => eb.fn.sum<number>('usage.cache_hits').as('cache_hits'),
      (eb) => eb.fn.sum<number>('usage.saved_usd').as('saved_usd'),
    ])
    .groupBy(key)
  if (query.sinceDay) q = q.where('usage.day', '>=', query.sinceDay)
  if (query.client) q = q.where('usage.client', '=', query.client)
  if (query.model) q = q.where('usage.model', '=', query.model)
  q = query.by === 'day' ? q.orderBy(key) : q.orderBy('cost_usd', 'desc').orderBy(key)
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

/** The (provider, upstream model) pairs that served requests with tokens since a day, for the unpriced check. */
export async function servedModels(db: Kysely<Database>, sinceDay?: string): Promise<Array<{ provider: string; model: string; requests: number }>> {
  let q = db
    .selectFrom('audit')
    .select(['provider', 'upstream_model', (eb) => eb.fn.countAll<number>().as('n')])
    .where('provider', 'is not', null)
    .where('upstream_model', 'is not', null)
    .where('total_tokens', '>', 0)
    .groupBy(['provider', 'upstream_model'])
  if (sinceDay) q = q.where('ts', '>=', sinceDay)
  const rows = await q.execute()
  return rows.map((r) => ({ provider: r.provider!, model: r.upstream_model!, requests: Number(r.n) }))
}
