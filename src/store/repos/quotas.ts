/**
 * Token usage per client and UTC period (migration 0004), for quotas. The server adds to it in batches
 * through the store writer (see src/limits/quotas.ts); the CLI reads it for `proxy clients ls`.
 */
import { sql, type Kysely } from 'kysely'
import type { WriteStatement } from '../audit-batch.js'
import { writeStatement } from './write-statement.js'
import { nowIso } from '../time.js'
import type { Database, QuotaPeriod } from '../schema.js'

export interface QuotaUsage {
  clientId: number
  period: QuotaPeriod
  periodKey: string
  tokens: number
}

/** The statements that add each row's tokens to its stored total, compiled for the store writer. */
export function quotaUsageStatements(db: Kysely<Database>, rows: readonly QuotaUsage[]): WriteStatement[] {
  const updatedAt = nowIso()
  return rows.map((r) =>
    writeStatement(
      db
        .insertInto('quota_usage')
        .values({ client_id: r.clientId, period: r.period, period_key: r.periodKey, tokens: r.tokens, updated_at: updatedAt })
        .onConflict((oc) => oc.columns(['client_id', 'period', 'period_key']).doUpdateSet({ tokens: sql`quota_usage.tokens + excluded.tokens`, updated_at: updatedAt })),
    ),
  )
}

/** The stored totals of one UTC day and one UTC month, for every client. */
export async function loadQuotaUsage(db: Kysely<Database>, day: string, month: string): Promise<QuotaUsage[]> {
  const rows = await db
    .selectFrom('quota_usage')
    .select(['client_id', 'period', 'period_key', 'tokens'])
    .where((eb) => eb.or([eb.and([eb('period', '=', 'day'), eb('period_key', '=', day)]), eb.and([eb('period', '=', 'month'), eb('period_key', '=', month)])]))
    .execute()
  return rows.map((r) => ({ clientId: r.client_id, period: r.period, periodKey: r.period_key, tokens: r.tokens }))
}

/** Tokens used today and this month (UTC) per client id. */
export async function quotaUsageByClient(db: Kysely<Database>, now = Date.now()): Promise<Map<number, { today: number; month: number }>> {
  const iso = new Date(now).toISOString()
  const out = new Map<number, { today: number; month: number }>()
  for (const r of await loadQuotaUsage(db, iso.slice(0, 10), iso.slice(0, 7))) {
    const entry = out.get(r.clientId) ?? { today: 0, month: 0 }
    if (r.period === 'day') entry.today = r.tokens
    else entry.month = r.tokens
    out.set(r.clientId, entry)
  }
  return out
}
