/**
 * The limiter the server calls once per request, after authentication and validation: it gathers the
 * limits that apply (the client's own, and the global policy's `limits.global`, `limits.ip` and
 * `limits.model[<model>]`), the client's token quotas, and asks the backend to admit the request against
 * all of them at once. Token limits are charged an estimate first and corrected at settlement.
 *
 * With Redis, an unreachable Redis is handled per the global policy's `redis.on_failure`: 'open' (the
 * default) serves with this instance's in-memory limits, 'closed' answers 503.
 */
import type { ClientConfig, ConfigSnapshot } from '../core/config.js'
import { limitsUnavailable, quotaExhausted, rateLimited, rateLimitHeaders } from './answers.js'
import { Tokenizer } from './estimate.js'
import { MemoryBackend } from './memory.js'
import type { RedisBackend } from './redis.js'
import type { QuotaBook } from './quotas.js'
import type { ConsumeOutcome, LimitBackend, LimitMetrics, QuotaCheck, QuotaRule, RateCheck, RateRule, SharedState, WindowLimit } from './types.js'
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
}

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
}

export interface SettleOutcome {
  usage: { total_tokens: number } | null
  served: boolean
  estimated?: boolean
}

/** What the limiter logs; a pino logger fits. */
export interface LimiterLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface LimiterOptions {
  config: () => ConfigSnapshot
  quotas: QuotaBook
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
}

const kindLetter = (kind: WindowLimit['kind']) => (kind === 'requests' ? 'r' : 't')

export class Limiter {
  readonly #config: () => ConfigSnapshot
  readonly #quotas: QuotaBook
  readonly #backend: LimitBackend
  /** serves while the shared backend is unreachable (fail-open); the backend itself when that is memory */
  readonly #local: MemoryBackend
  readonly #logger: LimiterLogger | undefined
  readonly #metrics: LimitMetrics | undefined
  readonly #clock: () => number
  readonly #tokenizer = new Tokenizer()
  readonly #compiled = new WeakMap<ConfigSnapshot, CompiledPolicy>()
  readonly #clientRules = new WeakMap<ClientConfig, RateRule[]>()
  #downReason: string | null = null
  #shared: SharedState | null = null

  constructor(opts: LimiterOptions) {
    this.#config = opts.config
    this.#quotas = opts.quotas
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
    }

    if (rules.length === 0 && quotas.length === 0) return new Granted(this, null, NO_HEADERS, NONE, NONE, 0, 0, client.id, periods.day, periods.month)

    let estimate = 0
    const needsTokens = quotas.length > 0 || rules.some((r) => r.kind === 'tokens')
    if (needsTokens && input.tokens) {
      if (!this.#tokenizer.ready) void this.#tokenizer.load()
      estimate = Math.max(1, Math.ceil(input.tokens(this.#tokenizer.counter())))
    }
    const rates: RateCheck[] = rules.map((r) => ({ key: r.key, limit: r.limit, windowMs: r.windowMs, cost: r.kind === 'requests' ? 1 : estimate }))
    const quotaChecks: QuotaCheck[] = quotas.map((q) => ({ key: q.key, limit: q.limit, cost: estimate, seed: q.seed, endsAt: q.endsAt }))
    const request = { rates, quotas: quotaChecks }

    let backend = this.#backend
    let outcome: ConsumeOutcome
    if (backend !== this.#local && !backend.available()) backend = this.#fallback(policy)
    try {
      outcome = await backend.consume(request)
    } catch {
      // The shared backend failed mid-request (timeout, lost connection): decide as if it were down.
      backend = this.#fallback(policy)
      outcome = await backend.consume(request)
    }

    const now = outcome.now
    const headers = rateLimitHeaders(rules, outcome.rates, quotas, outcome.quotas, now)
    const blocked = outcome.blocked
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
    return new Granted(this, backend, headers, tokenRates, quotas.map((q) => q.key), estimate, now, client.id, periods.day, periods.month)
  }

  /** @internal used by Granted */
  settleWith(backend: LimitBackend | null, granted: Granted, actual: number): void {
    const delta = actual - granted.estimate
    if (backend && delta !== 0 && (granted.tokenRates.length > 0 || granted.quotaKeys.length > 0)) {
      backend.settle({
        at: granted.at,
        rates: granted.tokenRates.map((r) => ({ key: r.key, windowMs: r.windowMs, delta })),
        quotas: granted.quotaKeys.map((key) => ({ key, delta })),
      })
    }
    if (actual > 0) this.#quotas.record(granted.clientId, granted.day, granted.month, actual)
  }

  async close(): Promise<void> {
    await this.#quotas.close()
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
    for (const c of snapshot.clientsByHash.values()) if (c.dailyTokens || c.monthlyTokens || c.limits.some((w) => w.kind === 'tokens')) tokens = true
    compiled = { global, ip, models, onFailure: snapshot.globalPolicy.redis.on_failure, tokens }
    this.#compiled.set(snapshot, compiled)
    // A reload that brings the first token limit loads the tokenizer in the background.
    if (tokens && !this.#tokenizer.ready) void this.#tokenizer.load()
    return compiled
  }
}

const isSharedState = (b: LimitBackend): b is LimitBackend & SharedState => typeof (b as Partial<SharedState>).get === 'function' && typeof (b as Partial<SharedState>).incr === 'function'

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})
const NONE: readonly never[] = Object.freeze([])

class Granted implements Admission {
  #settled = false

  constructor(
    readonly limiter: Limiter,
    readonly backend: LimitBackend | null,
    readonly headers: Readonly<Record<string, string>>,
    readonly tokenRates: ReadonlyArray<{ key: string; windowMs: number }>,
    readonly quotaKeys: readonly string[],
    readonly estimate: number,
    readonly at: number,
    readonly clientId: number,
    readonly day: string,
    readonly month: string,
  ) {}

  settle(outcome: SettleOutcome): void {
    if (this.#settled) return
    this.#settled = true
    const usage = outcome.usage
    const actual = usage ? (outcome.estimated ? Math.max(usage.total_tokens, this.estimate) : usage.total_tokens) : outcome.served ? this.estimate : 0
    this.limiter.settleWith(this.backend, this, actual)
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
