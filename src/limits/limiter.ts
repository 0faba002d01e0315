/**
 * The limiter the server calls once per request, after authentication and validation: it gathers the
 * limits that apply (the client's own, and the global policy's `limits.global`, `limits.ip` and
 * `limits.model[<model>]`), the client's token quotas, and asks the backend to admit the request against
 * all of them at once. Token limits are charged an estimate first and corrected at settlement.
 *
 * With Redis, an unreachable Redis is handled per the global policy's `redis.on_failure`: 'open' (the
 * default) serves with this instance's in-memory limits, 'closed' answers 503.
 */
import type { ClientConfig, ConfigSnapshot, ProviderConfig } from '../core/config.js'
import type { ProxyError } from '../core/errors.js'
import { costMicros, priceIn, type Price, type PricedUsage } from '../core/prices.js'
import { limitsUnavailable, quotaExhausted, rateLimited, rateLimitHeaders } from './answers.js'
import { budgetExhausted, budgetRemaining, providerBudgets, requestBudgets, SpendBooks, teamQuotas, type BudgetRule } from './budgets.js'
import { Tokenizer } from './estimate.js'
import { MemoryBackend } from './memory.js'
import type { RedisBackend } from './redis.js'
import type { Periods, QuotaBook } from './quotas.js'
import type { ConsumeOutcome, ConsumeRequest, LimitBackend, LimitMetrics, QuotaCheck, QuotaRule, RateCheck, RateRule, SharedState, WindowLimit } from './types.js'
import { compileRateSpec, dedupeWindows, type RateSpec } from '../core/windows.js'

export interface AdmitInput {
  client: ClientConfig
  ip: string | null
  model: string | null
  /**
   * The request's token estimate, given a text counter; only called when a token limit or quota applies.
   * Absent for requests that use no tokens (listing models): token limits and quotas then do not apply.
   */
  tokens?: (count: (text: string) => number) => number
  /** for money budgets: the prompt's tokens and the most the answer may add (null: the request sets no cap) */
  spend?: SpendInput
}

export interface SpendInput {
  /** the highest input and output prices among the providers that may serve (null: none known) */
  price: Price | null
  size: (count: (text: string) => number) => { prompt: number; maxOutput: number | null }
}

/** The output tokens a budget reservation assumes when the request sets no max_tokens (and no cap is configured). */
export const DEFAULT_OUTPUT_CAP = 4096

/** Told when a request settled against budgets: the amounts spent so far (this instance's view). */
export type BudgetObserver = (rule: BudgetRule, spent: number) => void

export interface Admission {
  /** x-ratelimit-* headers for the answer (empty when no limit applies) */
  readonly headers: Readonly<Record<string, string>>
  /**
   * Called once when the request has finished: the estimate becomes the actual usage (`usage`), stays
   * (served but no usage reported), or is refunded (not served: the request failed before an upstream answered).
   * Usage the proxy counted itself (`estimated`: a stream that ended without a usage chunk) is charged at
   * least the estimate.
   */
  settle(outcome: SettleOutcome): void
  /**
   * Reserves the worst-case cost against the budgets of the provider about to be tried (releasing what an
   * earlier attempt reserved); the error to skip it with when one is exhausted, else null.
   */
  reserveProvider(provider: ProviderConfig, upstreamModel: string): Promise<ProxyError | null>
  /** x-proxy-budget-remaining: USD left in the tightest budget that applies (null: no budget) */
  budgetRemaining(): string | null
  /** some provider has a budget: every attempt reserves against its provider's (reserveProvider) */
  readonly providerBudgets: boolean
}

export interface SettleOutcome {
  usage: ({ total_tokens: number } & Partial<PricedUsage>) | null
  served: boolean
  estimated?: boolean
  /** who served: the actual cost is priced for this provider and upstream model */
  provider?: string | null
  upstreamModel?: string | null
}

/** What the limiter logs; a pino logger fits. */
export interface LimiterLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface LimiterOptions {
  config: () => ConfigSnapshot
  quotas: QuotaBook
  /** spend and team-token totals per period; in memory only when absent */
  spend?: SpendBooks
  /** told after a request settled against budgets (alerts, the budget gauge) */
  onBudget?: BudgetObserver
  /** the shared backend; the in-memory one when absent */
  backend?: LimitBackend
  logger?: LimiterLogger
  metrics?: LimitMetrics
  clock?: () => number
}

export interface LimiterHealth {
  backend: 'memory' | 'redis'
  /** why the shared backend is not in use right now; null when all is well */
  degraded: string | null
  /** the global policy's redis.on_failure */
  onFailure: 'open' | 'closed'
}

interface CompiledPolicy {
  global: RateRule[]
  ip: WindowLimit[]
  models: Map<string, RateRule[]>
  onFailure: 'open' | 'closed'
  tokens: boolean
  /** some provider has a budget */
  providerBudgets: boolean
}

const kindLetter = (kind: WindowLimit['kind']) => (kind === 'requests' ? 'r' : 't')

export class Limiter {
  readonly #config: () => ConfigSnapshot
  readonly #quotas: QuotaBook
  readonly #spend: SpendBooks
  readonly #onBudget: BudgetObserver | undefined
  readonly #backend: LimitBackend
  /** serves while the shared backend is unreachable (fail-open); the backend itself when that is memory */
  readonly #local: MemoryBackend
  readonly #logger: LimiterLogger | undefined
  readonly #metrics: LimitMetrics | undefined
  readonly #clock: () => number
  readonly #tokenizer = new Tokenizer()
  readonly #compiled = new WeakMap<ConfigSnapshot, CompiledPolicy>()
  readonly #clientRules = new WeakMap<ClientConfig, RateRule[]>()
  readonly #teamRules = new WeakMap<object, RateRule[]>()
  #downReason: string | null = null
  #shared: SharedState | null = null

  constructor(opts: LimiterOptions) {
    this.#config = opts.config
    this.#quotas = opts.quotas
    this.#spend = opts.spend ?? new SpendBooks({ store: null, clock: opts.clock })
    this.#onBudget = opts.onBudget
    this.#clock = opts.clock ?? Date.now
    this.#local = opts.backend instanceof MemoryBackend ? opts.backend : new MemoryBackend({ clock: this.#clock })
    this.#backend = opts.backend ?? this.#local
    this.#logger = opts.logger
    this.#metrics = opts.metrics
  }

  get backendKind(): 'memory' | 'redis' {
    return this.#backend.kind
  }

  /** The Redis backend when limits are shared through one (the response cache uses its connection), else null. */
  get redis(): RedisBackend | null {
    return this.#backend.kind === 'redis' ? (this.#backend as unknown as RedisBackend) : null
  }

  /**
   * Small shared state with TTLs in the same backend as the limits (Redis when configured), falling back
   * to this instance's memory while Redis is unreachable. For circuit breakers and key cooldowns.
   */
  get shared(): SharedState {
    this.#shared ??= this.#makeShared()
    return this.#shared
  }

  #makeShared(): SharedState {
    const backend = this.#backend
    const local = this.#local
    if (backend === local || !isSharedState(backend)) return local
    const pick = <T>(fn: (s: SharedState) => Promise<T>): Promise<T> => (backend.available() ? fn(backend).catch(() => fn(local)) : fn(local))
    return {
      get: (key) => pick((s) => s.get(key)),
      getMany: (keys) => pick((s) => (typeof s.getMany === 'function' ? s.getMany(keys) : Promise.all(keys.map((k) => s.get(k))))),
      set: (key, value, ttlMs) => pick((s) => s.set(key, value, ttlMs)),
      incr: (key, ttlMs, by) => pick((s) => s.incr(key, ttlMs, by)),
      del: (key) => pick((s) => s.del(key)),
    }
  }

  /**
   * A text counter for usage no upstream reported (a stream cut short, or one without a usage chunk):
   * the tokenizer's, or about four characters a token until it has loaded (this starts the load).
   */
  textCounter(): (text: string) => number {
    if (!this.#tokenizer.ready) void this.#tokenizer.load()
    return this.#tokenizer.counter()
  }

  /** Loads the tokenizer now when token limits are configured, so the first request does not wait for it. */
  async warmUp(): Promise<void> {
    if (this.#compile(this.#config()).tokens) await this.#tokenizer.load()
  }

  health(): LimiterHealth {
    const onFailure = this.#compile(this.#config()).onFailure
    if (this.#backend.kind === 'memory') return { backend: 'memory', degraded: null, onFailure }
    const degraded = this.#backend.available() ? null : `redis unreachable (${this.#downReason ?? 'not connected'})`
    return { backend: 'redis', degraded, onFailure }
  }

  /** The shared backend's connection changed (wired by createLimiter); logs once per outage. */
  backendStatus(status: 'up' | 'down', detail?: string): void {
    if (status === 'down') {
      this.#downReason = detail ?? 'unreachable'
      const mode = this.#compile(this.#config()).onFailure
      this.#logger?.warn(
        { event: 'limits', backend: 'redis', err: this.#downReason, on_failure: mode },
        mode === 'open' ? 'Redis unreachable: serving with local in-memory limits (fail-open) until it is back' : 'Redis unreachable: /v1 requests are refused with 503 (fail-closed) until it is back',
      )
    } else {
      if (this.#downReason !== null) this.#logger?.info({ event: 'limits', backend: 'redis' }, 'Redis reachable again: shared limits resumed')
      this.#downReason = null
    }
  }

  /** Admits the request or throws the ProxyError to answer with (429, or 503 when failing closed). */
  async admit(input: AdmitInput): Promise<Admission> {
    const snapshot = this.#config()
    const policy = this.#compile(snapshot)
    const client = input.client
    const periods = this.#quotas.periods()

    const rules: RateRule[] = []
    const usesTokens = input.tokens !== undefined
    for (const r of this.#rulesFor(client)) if (usesTokens || r.kind === 'requests') rules.push(r)
    const team = client.team ?? null
    if (team) for (const r of this.#rulesForTeam(team)) if (usesTokens || r.kind === 'requests') rules.push(r)
    for (const r of policy.global) if (usesTokens || r.kind === 'requests') rules.push(r)
    if (input.ip !== null) {
      for (const w of policy.ip) {
        if (usesTokens || w.kind === 'requests') rules.push({ ...w, scope: 'ip', subject: input.ip, key: `i:${input.ip}:${kindLetter(w.kind)}:${w.windowMs}` })
      }
    }
    if (input.model !== null) {
      const modelRules = policy.models.get(input.model)
      if (modelRules) for (const r of modelRules) if (usesTokens || r.kind === 'requests') rules.push(r)
    }
    const quotas: QuotaRule[] = []
    if (usesTokens) {
      if (client.dailyTokens) quotas.push(this.#quota(client, 'day', periods.day, periods.dayEndsAt, client.dailyTokens))
      if (client.monthlyTokens) quotas.push(this.#quota(client, 'month', periods.month, periods.monthEndsAt, client.monthlyTokens))
      if (team) quotas.push(...teamQuotas(this.#spend, periods, team))
    }
    const budgets = usesTokens ? requestBudgets(this.#spend, periods, snapshot, client) : NONE
    let size: { prompt: number; maxOutput: number } | null = null
    let reserve = 0
    if ((budgets.length > 0 || policy.providerBudgets) && input.spend) {
      if (!this.#tokenizer.ready) void this.#tokenizer.load()
      const s = input.spend.size(this.#tokenizer.counter())
      size = { prompt: s.prompt, maxOutput: s.maxOutput ?? snapshot.budgetOutputCap ?? DEFAULT_OUTPUT_CAP }
      // at least a micro-dollar, so that a spent budget refuses even a request it cannot price
      reserve = Math.max(1, costMicros(input.spend.price, { prompt_tokens: size.prompt, completion_tokens: size.maxOutput }))
    } else if (budgets.length > 0) reserve = 1
    const base = { periods, team, size, budgets, providerBudgets: policy.providerBudgets }

    if (rules.length === 0 && quotas.length === 0 && budgets.length === 0) return new Granted(this, null, NO_HEADERS, NONE, NONE, 0, 0, client.id, base, 0)

    let estimate = 0
    const needsTokens = quotas.length > 0 || rules.some((r) => r.kind === 'tokens')
    if (needsTokens && input.tokens) {
      if (!this.#tokenizer.ready) void this.#tokenizer.load()
      estimate = Math.max(1, Math.ceil(input.tokens(this.#tokenizer.counter())))
    }
    const rates: RateCheck[] = rules.map((r) => ({ key: r.key, limit: r.limit, windowMs: r.windowMs, cost: r.kind === 'requests' ? 1 : estimate }))
    const quotaChecks: QuotaCheck[] = quotas.map((q) => ({ key: q.key, limit: q.limit, cost: estimate, seed: q.seed, endsAt: q.endsAt }))
    for (const b of budgets) quotaChecks.push({ key: b.key, limit: b.limit, cost: reserve, seed: b.seed, endsAt: b.endsAt })
    const request = { rates, quotas: quotaChecks }

    const { backend, outcome } = await this.#consume(policy, request)

    const now = outcome.now
    const tokenUsed = budgets.length > 0 ? outcome.quotas.slice(0, quotas.length) : outcome.quotas
    const headers: Record<string, string> = rateLimitHeaders(rules, outcome.rates, quotas, tokenUsed, now)
    const blocked = outcome.blocked
    if (blocked && blocked.type === 'quota' && blocked.index >= quotas.length) {
      const i = blocked.index - quotas.length
      this.#metrics?.rateLimited('budget')
      throw budgetExhausted(budgets[i]!, outcome.quotas[blocked.index]!, reserve, blocked.retryAfterMs, headers)
    }
    if (blocked) {
      if (blocked.type === 'quota') {
        const q = quotas[blocked.index]!
        this.#metrics?.rateLimited('quota')
        throw quotaExhausted(q, outcome.quotas[blocked.index]!, estimate, blocked.retryAfterMs, headers)
      }
      const rule = rules[blocked.index]!
      this.#metrics?.rateLimited(rule.scope)
      throw rateLimited(rule, outcome.rates[blocked.index]!, rates[blocked.index]!.cost, blocked.retryAfterMs, blocked.never, headers)
    }

    const tokenRates = rules.filter((r) => r.kind === 'tokens').map((r) => ({ key: r.key, windowMs: r.windowMs }))
    const granted = new Granted(this, backend, headers, tokenRates, quotas.map((q) => q.key), estimate, now, client.id, base, reserve)
    if (budgets.length > 0) granted.budgetUsed = outcome.quotas.slice(quotas.length)
    return granted
  }

  /** @internal used by Granted: a provider's budgets, for the attempt about to call it */
  async reserveFor(granted: Granted, provider: ProviderConfig, upstreamModel: string): Promise<ProxyError | null> {
    granted.releaseHold()
    if (!provider.budgets || !granted.base.size) return null
    const rules = providerBudgets(this.#spend, granted.base.periods, provider)
    if (rules.length === 0) return null
    const snapshot = this.#config()
    const { prompt, maxOutput } = granted.base.size
    const reserve = Math.max(1, costMicros(priceIn(snapshot, provider.name, upstreamModel)?.price ?? null, { prompt_tokens: prompt, completion_tokens: maxOutput }))
    const { backend, outcome } = await this.#consume(this.#compile(snapshot), { rates: [], quotas: rules.map((b) => ({ key: b.key, limit: b.limit, cost: reserve, seed: b.seed, endsAt: b.endsAt })) })
    const blocked = outcome.blocked
    if (blocked) {
      this.#metrics?.rateLimited('budget')
      return budgetExhausted(rules[blocked.index]!, outcome.quotas[blocked.index]!, reserve, blocked.retryAfterMs, { ...granted.headers })
    }
    granted.hold = { backend, rules, reserve, at: outcome.now, used: outcome.quotas, provider: provider.name }
    return null
  }

  /** @internal used by Granted */
  settleWith(backend: LimitBackend | null, granted: Granted, actual: number, outcome: SettleOutcome): void {
    const delta = actual - granted.estimate
    const { base } = granted
    const served = outcome.served && outcome.provider ? outcome.provider : null
    const hold = granted.hold
    let cost = 0
    if (outcome.usage && served) {
      const u = outcome.usage
      cost = costMicros(priceIn(this.#config(), served, outcome.upstreamModel ?? null)?.price ?? null, { prompt_tokens: u.prompt_tokens ?? 0, completion_tokens: u.completion_tokens ?? 0, cached_tokens: u.cached_tokens, cache_write_tokens: u.cache_write_tokens })
    } else if (outcome.served) {
      // served without a usage report: the reservation stands
      cost = granted.reserve
    }
    const quotaOps: Array<{ key: string; delta: number }> = []
    if (delta !== 0) for (const key of granted.quotaKeys) quotaOps.push({ key, delta })
    const costDelta = cost - granted.reserve
    if (costDelta !== 0) for (const b of base.budgets) quotaOps.push({ key: b.key, delta: costDelta })
    if (backend && ((delta !== 0 && granted.tokenRates.length > 0) || quotaOps.length > 0)) {
      backend.settle({ at: granted.at, rates: delta === 0 ? [] : granted.tokenRates.map((r) => ({ key: r.key, windowMs: r.windowMs, delta })), quotas: quotaOps })
    }
    if (hold) {
      // the provider that served keeps its reservation, settled with the cost; any other (none) is refunded
      const held = hold.provider === served ? cost : 0
      if (held !== hold.reserve) hold.backend.settle({ at: hold.at, rates: [], quotas: hold.rules.map((b) => ({ key: b.key, delta: held - hold.reserve })) })
    }
    const { day, month } = base.periods
    if (actual > 0) {
      this.#quotas.record(granted.clientId, day, month, actual)
      if (base.team) this.#spend.book('tokens:team').record(base.team.id, day, month, actual)
    }
    if (cost > 0) {
      this.#spend.book('spend:global').record(0, day, month, cost)
      this.#spend.book('spend:client').record(granted.clientId, day, month, cost)
      if (base.team) this.#spend.book('spend:team').record(base.team.id, day, month, cost)
      if (served) {
        const provider = this.#config().providers.get(served)
        if (provider) this.#spend.book('spend:provider').record(provider.id, day, month, cost)
      }
      if (this.#onBudget) {
        for (const b of base.budgets) this.#onBudget(b, this.#spend.book(`spend:${b.level}`).used(b.subjectId, b.period, b.periodKey))
        if (hold && hold.provider === served) for (const b of hold.rules) this.#onBudget(b, this.#spend.book('spend:provider').used(b.subjectId, b.period, b.periodKey))
      }
    }
  }

  /** @internal used by Granted: a provider reservation that no attempt used is refunded */
  refund(hold: ProviderHold): void {
    hold.backend.settle({ at: hold.at, rates: [], quotas: hold.rules.map((b) => ({ key: b.key, delta: -hold.reserve })) })
  }

  /** The backend's decision, from this instance's memory when the shared backend is down (failing open) or failed. */
  async #consume(policy: CompiledPolicy, request: ConsumeRequest): Promise<{ backend: LimitBackend; outcome: ConsumeOutcome }> {
    let backend = this.#backend
    if (backend !== this.#local && !backend.available()) backend = this.#fallback(policy)
    try {
      return { backend, outcome: await backend.consume(request) }
    } catch {
      // The shared backend failed mid-request (timeout, lost connection): decide as if it were down.
      backend = this.#fallback(policy)
      return { backend, outcome: await backend.consume(request) }
    }
  }

  async close(): Promise<void> {
    await this.#quotas.close()
    await this.#spend.close()
    await this.#backend.close()
    if (this.#local !== this.#backend) await this.#local.close()
  }

  #fallback(policy: CompiledPolicy): LimitBackend {
    if (policy.onFailure === 'closed') {
      this.#metrics?.rateLimited('redis')
      throw limitsUnavailable(this.#downReason ?? 'not connected')
    }
    return this.#local
  }

  #quota(client: ClientConfig, period: 'day' | 'month', periodKey: string, endsAt: number, limit: number): QuotaRule {
    return {
      period,
      periodKey,
      clientId: client.id,
      client: client.name,
      key: `${client.id}:${period === 'day' ? 'd' : 'm'}:${periodKey}`,
      limit,
      endsAt,
      seed: this.#quotas.used(client.id, period, periodKey),
    }
  }

  #rulesFor(client: ClientConfig): RateRule[] {
    let rules = this.#clientRules.get(client)
    if (!rules) {
      rules = dedupeWindows(client.limits).map((w) => ({ ...w, scope: 'client' as const, subject: client.name, key: `c:${client.id}:${kindLetter(w.kind)}:${w.windowMs}` }))
      this.#clientRules.set(client, rules)
    }
    return rules
  }

  #rulesForTeam(team: NonNullable<ClientConfig['team']>): RateRule[] {
    let rules = this.#teamRules.get(team)
    if (!rules) {
      rules = dedupeWindows(team.limits).map((w) => ({ ...w, scope: 'team' as const, subject: team.name, key: `T:${team.id}:${kindLetter(w.kind)}:${w.windowMs}` }))
      this.#teamRules.set(team, rules)
    }
    return rules
  }

  #compile(snapshot: ConfigSnapshot): CompiledPolicy {
    let compiled = this.#compiled.get(snapshot)
    if (compiled) return compiled
    const limits = snapshot.globalPolicy.limits
    const global = compileRateSpec(limits.global as RateSpec).map((w) => ({ ...w, scope: 'global' as const, subject: null, key: `g:${kindLetter(w.kind)}:${w.windowMs}` }))
    const ip = compileRateSpec(limits.ip as RateSpec)
    const models = new Map<string, RateRule[]>()
    for (const [model, spec] of Object.entries(limits.model ?? {})) {
      const rules = compileRateSpec(spec as RateSpec).map((w) => ({ ...w, scope: 'model' as const, subject: model, key: `m:${model}:${kindLetter(w.kind)}:${w.windowMs}` }))
      if (rules.length > 0) models.set(model, rules)
    }
    let tokens = global.some((r) => r.kind === 'tokens') || ip.some((w) => w.kind === 'tokens') || [...models.values()].some((rs) => rs.some((r) => r.kind === 'tokens'))
    for (const c of snapshot.clientsByHash.values()) if (c.dailyTokens || c.monthlyTokens || c.limits.some((w) => w.kind === 'tokens') || c.budgets) tokens = true
    for (const t of snapshot.teams?.values() ?? []) if (t.dailyTokens || t.monthlyTokens || t.limits.some((w) => w.kind === 'tokens') || t.budgets.daily || t.budgets.monthly) tokens = true
    const providerBudgets = [...snapshot.providers.values()].some((p) => p.budgets)
    if (providerBudgets || snapshot.globalBudgets) tokens = true
    compiled = { global, ip, models, onFailure: snapshot.globalPolicy.redis.on_failure, tokens, providerBudgets }
    this.#compiled.set(snapshot, compiled)
    // A reload that brings the first token limit loads the tokenizer in the background.
    if (tokens && !this.#tokenizer.ready) void this.#tokenizer.load()
    return compiled
  }
}

const isSharedState = (b: LimitBackend): b is LimitBackend & SharedState => typeof (b as Partial<SharedState>).get === 'function' && typeof (b as Partial<SharedState>).incr === 'function'

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})
const NONE: readonly never[] = Object.freeze([])

interface GrantBase {
  periods: Periods
  team: ClientConfig['team'] | null
  /** the request's prompt tokens and output cap, when budgets apply */
  size: { prompt: number; maxOutput: number } | null
  budgets: readonly BudgetRule[]
  providerBudgets: boolean
}

/** A provider's budgets reserved for the attempt that calls it. */
interface ProviderHold {
  backend: LimitBackend
  rules: BudgetRule[]
  reserve: number
  at: number
  used: number[]
  provider: string
}

class Granted implements Admission {
  #settled = false
  budgetUsed: number[] | null = null
  hold: ProviderHold | null = null

  constructor(
    readonly limiter: Limiter,
    readonly backend: LimitBackend | null,
    readonly headers: Readonly<Record<string, string>>,
    readonly tokenRates: ReadonlyArray<{ key: string; windowMs: number }>,
    readonly quotaKeys: readonly string[],
    readonly estimate: number,
    readonly at: number,
    readonly clientId: number,
    readonly base: GrantBase,
    /** micro-dollars reserved against the request's budgets */
    readonly reserve: number,
  ) {}

  settle(outcome: SettleOutcome): void {
    if (this.#settled) return
    this.#settled = true
    const usage = outcome.usage
    const actual = usage ? (outcome.estimated ? Math.max(usage.total_tokens, this.estimate) : usage.total_tokens) : outcome.served ? this.estimate : 0
    this.limiter.settleWith(this.backend, this, actual, outcome)
  }

  reserveProvider(provider: ProviderConfig, upstreamModel: string): Promise<ProxyError | null> {
    if (this.#settled) return Promise.resolve(null)
    return this.limiter.reserveFor(this, provider, upstreamModel)
  }

  releaseHold(): void {
    if (!this.hold) return
    this.limiter.refund(this.hold)
    this.hold = null
  }

  get providerBudgets(): boolean {
    return this.base.size !== null && this.base.providerBudgets
  }

  budgetRemaining(): string | null {
    const rules = [...this.base.budgets, ...(this.hold?.rules ?? [])]
    if (rules.length === 0) return null
    return budgetRemaining(rules, [...(this.budgetUsed ?? []), ...(this.hold?.used ?? [])])
  }
}

export interface CreateLimiterOptions extends Omit<LimiterOptions, 'backend'> {
  /** Redis URL (PROXY_REDIS_URL / --redis-url); memory when absent */
  redisUrl?: string | null
  /** Redis key prefix (PROXY_REDIS_PREFIX), default 'proxy:' */
  redisPrefix?: string
  /** how long a check may wait for Redis before the limiter fails open or closed (default 500 ms) */
  redisTimeoutMs?: number
}

/** Builds the limiter with the backend the settings ask for, and waits (briefly) for Redis to connect. */
export async function createLimiter(opts: CreateLimiterOptions): Promise<Limiter> {
  if (!opts.redisUrl) return new Limiter(opts)
  let limiter: Limiter | null = null
  const early: Array<['up' | 'down', string | undefined]> = []
  // ioredis is loaded only when Redis is configured: a single instance does not pay its memory.
  const { RedisBackend } = await import('./redis.js')
  const backend = new RedisBackend({
    url: opts.redisUrl,
    prefix: opts.redisPrefix,
    commandTimeoutMs: opts.redisTimeoutMs,
    onStatus: (status, detail) => (limiter ? limiter.backendStatus(status, detail) : early.push([status, detail])),
  })
  limiter = new Limiter({ ...opts, backend })
  for (const [status, detail] of early) limiter.backendStatus(status, detail)
  const connected = await backend.waitReady(1500)
  if (connected) opts.logger?.info({ event: 'limits', backend: 'redis', prefix: backend.prefix }, 'limits and quotas are shared through Redis')
  else if (early.length === 0) limiter.backendStatus('down', 'could not connect at start')
  return limiter
}
