/**
 * Money budgets and team quotas: the rules a request is checked against besides its client's own limits,
 * and the books that keep what was spent per UTC day and month.
 *
 * A budget is a quota counted in micro-dollars: the backend checks it with the same atomic
 * check-and-consume as token quotas (one Lua script on Redis), so a request first reserves its worst-case
 * cost against every budget that applies, or against none, and is settled with its actual cost when it
 * ends. Micro-dollars keep every sum an exact integer, in memory, in the store and in Redis.
 */
import type { Budgets, ClientConfig, ConfigSnapshot, ProviderConfig, TeamConfig } from '../core/config.js'
import { ProxyError } from '../core/errors.js'
import { formatReset } from './answers.js'
import { QuotaBook, type Periods, type QuotaStore } from './quotas.js'
import type { QuotaPeriod, QuotaRule } from './types.js'

export type BudgetLevel = 'global' | 'client' | 'team' | 'provider'

/** What the books count: money per level, and team tokens (a team's token quotas). */
export type TotalScope = `spend:${BudgetLevel}` | 'tokens:team'

export const TOTAL_SCOPES: readonly TotalScope[] = ['spend:global', 'spend:client', 'spend:team', 'spend:provider', 'tokens:team']

/** A budget bound to its counter: a quota in micro-dollars. */
export interface BudgetRule extends QuotaRule {
  level: BudgetLevel
  /** the client's, team's or provider's name; null for global */
  name: string | null
  subjectId: number
}

/** Where the books persist (the composition root wires it to the store's `period_totals`). */
export type TotalsStore = (scope: TotalScope) => QuotaStore

/**
 * Per scope, the amounts used in the current UTC day and month: a QuotaBook each (subject id in place of
 * the client id), written behind and re-read now and then like token quotas.
 */
export class SpendBooks {
  readonly #books: ReadonlyMap<TotalScope, QuotaBook>

  constructor(opts: { store: TotalsStore | null; clock?: () => number; flushMs?: number; onError?: (err: unknown) => void }) {
    this.#books = new Map(TOTAL_SCOPES.map((scope) => [scope, new QuotaBook({ store: opts.store ? opts.store(scope) : null, clock: opts.clock, flushMs: opts.flushMs, onError: opts.onError })]))
  }

  book(scope: TotalScope): QuotaBook {
    return this.#books.get(scope)!
  }

  periods(): Periods {
    return this.book('spend:global').periods()
  }

  async load(): Promise<void> {
    await Promise.all([...this.#books.values()].map((b) => b.load()))
  }

  async flush(): Promise<void> {
    await Promise.all([...this.#books.values()].map((b) => b.flush()))
  }

  async close(): Promise<void> {
    await Promise.all([...this.#books.values()].map((b) => b.close()))
  }
}

const letter = (period: QuotaPeriod) => (period === 'day' ? 'd' : 'm')

/** The budgets of one subject as rules for the current periods (none when it has no budget). */
export function budgetRules(books: SpendBooks, periods: Periods, level: BudgetLevel, subjectId: number, name: string | null, budgets: Budgets | undefined, out: BudgetRule[]): void {
  if (!budgets) return
  const book = books.book(`spend:${level}`)
  for (const [period, limit] of [['day', budgets.daily], ['month', budgets.monthly]] as const) {
    if (!limit) continue
    const periodKey = period === 'day' ? periods.day : periods.month
    out.push({
      level,
      name,
      subjectId,
      period,
      periodKey,
      clientId: subjectId,
      client: name ?? 'all clients',
      key: `b:${level}:${subjectId}:${letter(period)}:${periodKey}`,
      limit,
      endsAt: period === 'day' ? periods.dayEndsAt : periods.monthEndsAt,
      seed: book.used(subjectId, period, periodKey),
    })
  }
}

/** The budgets that apply to a request before its provider is known: global, its client's and its team's. */
export function requestBudgets(books: SpendBooks, periods: Periods, snapshot: ConfigSnapshot, client: ClientConfig): BudgetRule[] {
  const out: BudgetRule[] = []
  budgetRules(books, periods, 'global', 0, null, snapshot.globalBudgets, out)
  budgetRules(books, periods, 'client', client.id, client.name, client.budgets, out)
  const team = client.team
  if (team) budgetRules(books, periods, 'team', team.id, team.name, team.budgets, out)
  return out
}

export function providerBudgets(books: SpendBooks, periods: Periods, provider: ProviderConfig): BudgetRule[] {
  const out: BudgetRule[] = []
  budgetRules(books, periods, 'provider', provider.id, provider.name, provider.budgets, out)
  return out
}

/** A team's token quotas as quota rules (their counters are the team's, shared by its clients). */
export function teamQuotas(books: SpendBooks, periods: Periods, team: TeamConfig): QuotaRule[] {
  const book = books.book('tokens:team')
  const out: QuotaRule[] = []
  for (const [period, limit] of [['day', team.dailyTokens], ['month', team.monthlyTokens]] as const) {
    if (!limit) continue
    const periodKey = period === 'day' ? periods.day : periods.month
    out.push({
      period,
      periodKey,
      clientId: team.id,
      client: team.name,
      owner: `team '${team.name}'`,
      key: `tq:${team.id}:${letter(period)}:${periodKey}`,
      limit,
      endsAt: period === 'day' ? periods.dayEndsAt : periods.monthEndsAt,
      seed: book.used(team.id, period, periodKey),
    })
  }
  return out
}

export const formatUsd = (micros: number): string => {
  const usd = micros / 1_000_000
  return usd >= 100 ? usd.toFixed(2) : usd >= 1 ? usd.toFixed(4) : usd.toFixed(6)
}

export function describeBudget(rule: Pick<BudgetRule, 'level' | 'name' | 'period'>): string {
  const period = rule.period === 'day' ? 'daily' : 'monthly'
  return rule.level === 'global' ? `the proxy's ${period} budget (all clients together)` : `the ${period} budget of ${rule.level} '${rule.name}'`
}

/** 429 insufficient_quota: a money budget cannot cover this request's worst-case cost. */
export function budgetExhausted(rule: BudgetRule, used: number, reserve: number, retryAfterMs: number, headers: Record<string, string>): ProxyError {
  const resets = new Date(rule.endsAt).toISOString()
  return new ProxyError({
    status: 429,
    type: 'insufficient_quota',
    code: 'insufficient_quota',
    message:
      `You exceeded your current quota: ${describeBudget(rule)} is $${formatUsd(rule.limit)} per UTC ${rule.period}, $${formatUsd(used)} of it is spent or reserved, ` +
      `and this request may cost up to $${formatUsd(reserve)} (its prompt plus its max output tokens at the model's price). ` +
      `The budget resets at ${resets} (in ${formatReset(retryAfterMs)}); lower max_tokens to fit what is left.`,
    headers: { ...headers, 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))), 'x-should-retry': 'false', 'x-proxy-budget-remaining': formatUsd(Math.max(0, rule.limit - used)) },
  })
}

/** x-proxy-budget-remaining: USD left in the tightest budget after this request's reservation. */
export function budgetRemaining(rules: readonly BudgetRule[], used: readonly number[]): string | null {
  let least: number | null = null
  for (let i = 0; i < rules.length; i++) {
    const left = Math.max(0, rules[i]!.limit - used[i]!)
    if (least === null || left < least) least = left
  }
  return least === null ? null : formatUsd(least)
}
