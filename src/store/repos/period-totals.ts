/**
 * Amounts per scope, subject and UTC period (migration 0010): money spent (micro-dollars) per client,
 * team, provider and globally, and team token usage. The server adds to them in batches through the
 * store writer (src/limits/budgets.ts); the CLI reads them for `proxy budgets ls` and `proxy teams ls`.
 */
import { sql, type Kysely } from 'kysely'
import type { WriteStatement } from '../audit-batch.js'
import { nowIso } from '../time.js'
import type { Database, QuotaPeriod } from '../schema.js'
import { writeStatement } from './write-statement.js'

export interface PeriodTotal {
  subjectId: number
  period: QuotaPeriod
  periodKey: string
  amount: number
}

export function periodTotalStatements(db: Kysely<Database>, scope: string, rows: ReadonlyArray<PeriodTotal>): WriteStatement[] {
  const updatedAt = nowIso()
  return rows.map((r) =>
    writeStatement(
      db
        .insertInto('period_totals')
        .values({ scope, subject_id: r.subjectId, period: r.period, period_key: r.periodKey, amount: r.amount, updated_at: updatedAt })
        .onConflict((oc) => oc.columns(['scope', 'subject_id', 'period', 'period_key']).doUpdateSet({ amount: sql`period_totals.amount + excluded.amount`, updated_at: updatedAt })),
    ),
  )
}

/** The stored totals of one scope for one UTC day and one UTC month. */
export async function loadPeriodTotals(db: Kysely<Database>, scope: string, day: string, month: string): Promise<PeriodTotal[]> {
  const rows = await db
    .selectFrom('period_totals')
    .select(['subject_id', 'period', 'period_key', 'amount'])
    .where('scope', '=', scope)
    .where((eb) => eb.or([eb.and([eb('period', '=', 'day'), eb('period_key', '=', day)]), eb.and([eb('period', '=', 'month'), eb('period_key', '=', month)])]))
    .execute()
  return rows.map((r) => ({ subjectId: r.subject_id, period: r.period, periodKey: r.period_key, amount: Number(r.amount) }))
}
