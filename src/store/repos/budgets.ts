/**
 * Money budgets (migration 0010): USD per UTC day and month, kept in micro-dollars, on all requests
 * together ('global'), a client, a team or a provider. Setting one checks that every model it covers
 * has a price: a budget over a model that costs "0" would never hold.
 */
import type { Kysely } from 'kysely'
import { invalidRequest, notFound } from '../../core/errors.js'
import { PriceBook } from '../../core/prices.js'
import { nowIso } from '../time.js'
import type { BudgetLevel, Database, QuotaPeriod } from '../schema.js'
import { bumpConfigVersion } from './config-version.js'
import { listPrices } from './prices.js'

export const BUDGET_LEVELS: readonly BudgetLevel[] = ['global', 'client', 'team', 'provider']

/** What `--daily-budget` / `--monthly-budget` change: micro-dollars, null removes, absent keeps. */
export interface BudgetPatch {
  daily?: number | null
  monthly?: number | null
}

export interface BudgetLine {
  level: BudgetLevel
  /** the client's, team's or provider's name; null for global */
  name: string | null
  subjectId: number
  period: QuotaPeriod
  limitMicros: number
}

const TABLE: Record<Exclude<BudgetLevel, 'global'>, 'clients' | 'teams' | 'providers'> = { client: 'clients', team: 'teams', provider: 'providers' }

/** The id budgets of a level are kept under: 0 for global, else the named client's, team's or provider's. */
export async function budgetSubject(db: Kysely<Database>, level: BudgetLevel, name: string | null): Promise<number> {
  if (level === 'global') return 0
  if (!name) throw invalidRequest(`A ${level} budget needs the ${level}'s name.`, 'name')
  const row = await db.selectFrom(TABLE[level]).select('id').where('name', '=', name).executeTakeFirst()
  if (!row) throw notFound(`No ${level} named '${name}'. List them with 'proxy ${TABLE[level]} ls'.`)
  return row.id
}

/** The `meta` row that holds the output cap budgets assume for requests that set none. */
export const OUTPUT_CAP_KEY = 'budget_output_cap'

/** Sets (or, with null, removes) the output tokens a reservation assumes when a request sets no max_tokens. */
export async function setOutputCap(db: Kysely<Database>, tokens: number | null): Promise<void> {
  if (tokens !== null && (!Number.isSafeInteger(tokens) || tokens < 1 || tokens > 10_000_000)) throw invalidRequest(`The output cap must be a whole number of tokens from 1 to 10M, not ${tokens}.`, 'output_cap')
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('meta').where('key', '=', OUTPUT_CAP_KEY).execute()
    if (tokens !== null) await tx.insertInto('meta').values({ key: OUTPUT_CAP_KEY, value: String(tokens) }).execute()
    await bumpConfigVersion(tx)
  })
}

export async function getOutputCap(db: Kysely<Database>): Promise<number | null> {
  const row = await db.selectFrom('meta').select('value').where('key', '=', OUTPUT_CAP_KEY).executeTakeFirst()
  return row ? Number(row.value) : null
}

/** Sets or removes a subject's daily and monthly budgets; running servers apply them within about a second. */
export async function setBudgets(db: Kysely<Database>, level: BudgetLevel, name: string | null, patch: BudgetPatch): Promise<BudgetLine[]> {
  if (!BUDGET_LEVELS.includes(level)) throw invalidRequest(`A budget level is one of ${BUDGET_LEVELS.join(', ')}, not '${level}'.`, 'level')
  const subjectId = await budgetSubject(db, level, name)
  for (const [field, value] of [['daily', patch.daily], ['monthly', patch.monthly]] as const) {
    if (value !== undefined && value !== null && (!Number.isSafeInteger(value) || value < 1)) throw invalidRequest(`A ${field} budget must be a positive amount of USD (at least $0.000001), or 'off'.`, `${field}_budget`)
  }
  if (patch.daily || patch.monthly) await assertPriced(db, level, subjectId, name)
  await db.transaction().execute(async (tx) => {
    for (const [period, value] of [['day', patch.daily], ['month', patch.monthly]] as const) {
      if (value === undefined) continue
      if (value === null) {
        await tx.deleteFrom('budgets').where('level', '=', level).where('subject_id', '=', subjectId).where('period', '=', period).execute()
        continue
      }
      const updatedAt = nowIso()
      await tx
        .insertInto('budgets')
        .values({ level, subject_id: subjectId, period, limit_micro: value, updated_at: updatedAt })
        .onConflict((oc) => oc.columns(['level', 'subject_id', 'period']).doUpdateSet({ limit_micro: value, updated_at: updatedAt }))
        .execute()
    }
  })
  return (await listBudgets(db)).filter((b) => b.level === level && b.subjectId === subjectId)
}

export async function listBudgets(db: Kysely<Database>): Promise<BudgetLine[]> {
  const [rows, clients, teams, providers] = await Promise.all([
    db.selectFrom('budgets').selectAll().orderBy('level').orderBy('subject_id').orderBy('period').execute(),
    db.selectFrom('clients').select(['id', 'name']).execute(),
    db.selectFrom('teams').select(['id', 'name']).execute(),
    db.selectFrom('providers').select(['id', 'name']).execute(),
  ])
  const names: Record<BudgetLevel, Map<number, string>> = {
    global: new Map(),
    client: new Map(clients.map((c) => [c.id, c.name])),
    team: new Map(teams.map((t) => [t.id, t.name])),
    provider: new Map(providers.map((p) => [p.id, p.name])),
  }
  return rows.map((r) => ({ level: r.level, name: names[r.level].get(r.subject_id) ?? null, subjectId: r.subject_id, period: r.period, limitMicros: Number(r.limit_micro) }))
}

/**
 * Refuses a budget over models without a price: the route targets the subject can reach (a provider's
 * own, a client's allowed models, every route for a team or globally).
 */
async function assertPriced(db: Kysely<Database>, level: BudgetLevel, subjectId: number, name: string | null): Promise<void> {
  const targets = await db
    .selectFrom('route_targets')
    .innerJoin('routes', 'routes.id', 'route_targets.route_id')
    .innerJoin('providers', 'providers.id', 'route_targets.provider_id')
    .select(['routes.model as model', 'route_targets.upstream_model as upstream', 'providers.id as providerId', 'providers.name as provider', 'providers.settings as settings'])
    .execute()
  let allowed: Set<string> | null = null
  if (level === 'client') {
    const row = await db.selectFrom('clients').select('models').where('id', '=', subjectId).executeTakeFirst()
    if (row?.models) allowed = new Set(JSON.parse(row.models) as string[])
  }
  const book = new PriceBook(await listPrices(db))
  const missing = new Set<string>()
  for (const t of targets) {
    if (level === 'provider' && t.providerId !== subjectId) continue
    if (allowed && !allowed.has(t.model)) continue
    // a pattern's upstream model is filled in per request: it cannot be checked here
    if (t.upstream.includes('*') || t.upstream.includes('$')) continue
    if (!book.resolve(t.provider, t.upstream, JSON.parse(t.settings) as Record<string, unknown>)) missing.add(`${t.provider}/${t.upstream}`)
  }
  if (missing.size === 0) return
  const [first] = [...missing]
  const [provider, model] = [first!.slice(0, first!.indexOf('/')), first!.slice(first!.indexOf('/') + 1)]
  throw invalidRequest(
    `Cannot set a budget on ${level === 'global' ? 'all requests' : `${level} '${name}'`}: no price is known for ${[...missing].join(', ')}, so its requests would count as $0. ` +
      `Set a price first, e.g. 'proxy prices set ${model} --provider ${provider} --input 1 --output 2' (USD per 1M tokens).`,
    'budget',
    'price_unknown',
  )
}
