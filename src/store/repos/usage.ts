import { sql, type Kysely } from 'kysely'
import type { Database, UsageTable } from '../schema.js'

/** What one batch adds to one (day, client, model) row: the row's own shape, as increments. */
export type UsageDelta = UsageTable

/** The columns of a usage delta, in the order of a positional VALUES row (PostgreSQL's writer). */
export const USAGE_COLUMNS = ['day', 'client', 'model', 'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cost_usd'] as const satisfies ReadonlyArray<keyof UsageDelta>

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
  }))
}
