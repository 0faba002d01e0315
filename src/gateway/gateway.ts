/**
 * The gateway: from a validated OpenAI request and an authenticated client to an upstream answer.
 * It resolves the model's route and the effective policy (defaults < global < route < client), then
 * walks the attempt plan (plan-attempts.ts): the route's keys and targets and the global fallback
 * route, skipping keys that are invalid or cooling down and circuits that are open, backing off
 * before calling a failing provider again, within max_attempts and the request's time budget.
 *
 * For streams it holds the response back until the first chunk has arrived, so a failure before the
 * first byte still falls back; after that, failures reach the client as an error event.
 */
import type { Dispatcher } from 'undici'
import { abortSignalFor, LightAbort, type SignalLike } from '../core/signal-like.js'
import { ProxyError } from '../core/errors.js'
import type { SharedState } from '../core/shared-state.js'
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  Completion,
  CompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  ModelObject,
} from '../core/openai-schema.js'
import { effectivePolicy, type EffectivePolicy } from '../core/policy-schema.js'
import { createAdapter, isKeyless } from '../providers/index.js'
import type { CallContext, ProviderAdapter } from '../providers/types.js'
import type { HealthSink } from '../store/repos/key-health.js'
import { GLOBAL_POLICY, type ClientConfig, type ConfigSnapshot, type ProviderConfig, type RouteConfig, type RouteTarget } from '../core/config.js'
import { systemClock, type Clock } from './clock.js'
import type { GatewayEvents } from './events.js'
import { HealthRegistry, type GatewayHealth, type Lease } from './health-registry.js'
import { SharedHealth } from './shared-health.js'
import { KeySelector } from './key-selector.js'
import { asProxyError, classifyFailure, type FailureReason } from './outcome.js'
import { AttemptPlanner, type Candidate, type FallbackKind } from './plan-attempts.js'
import { resolveRoute, visibleRoutes } from './resolve-route.js'
import { primeStream, watchStream } from './streams.js'

export type { GatewayHealth } from './health-registry.js'
export type { FallbackKind } from './plan-attempts.js'
export type { AttemptRecord } from '../core/attempt.js'
import type { AttemptRecord } from '../core/attempt.js'
import type { AttemptTrace, AttemptTracer } from '../core/trace.js'

export interface Caller {
  client: ClientConfig
  requestId: string
  /** the client's connection: aborted when it goes away (an AbortSignal will do) */
  signal: SignalLike
  /** filled in as attempts happen, so the caller can log them whether the request succeeds or fails */
  attempts: AttemptRecord[]
  /** the client's request headers a native upstream call forwards (e.g. anthropic-version) */
  passHeaders?: Record<string, string>
  /** only this provider (and key, when named) may serve: a continuation of a response it made */
  pin?: { provider: string; key: string | null }
  /**
   * Called before each attempt with the target about to be tried (money budgets reserve against its
   * provider here); an error skips that provider for the rest of the request, and is the answer when
   * nothing else serves.
   */
  beforeAttempt?: (target: RouteTarget) => Promise<ProxyError | null>
  /** a span per attempt when traces are on (src/telemetry/tracing); absent otherwise */
  trace?: AttemptTracer
}

export interface Served<T> {
  value: T
  provider: string
  upstreamModel: string
  key: string | null
  attempts: AttemptRecord[]
  /** parameters the serving adapter left out (CallContext.warn); the server lists them in x-proxy-dropped-params */
  droppedParams?: string[]
  /** what kind of fallback served: another key of the first provider, another target, or the global route */
  fallback?: FallbackKind | null
}

export interface GatewayDeps {
  config: () => ConfigSnapshot
  dispatcher: Dispatcher
  /** told about every circuit transition and key health change */
  events?: GatewayEvents
  /** write-behind persistence of key health and circuit states (src/store/repos/key-health.ts) */
  healthSink?: HealthSink
  clock?: Clock
  /** for full-jitter backoff and the weighted key strategy */
  random?: () => number
  /**
   * Shared state (the limits backend's `limits.shared`: Redis when instances share one): circuit
   * openings, key cooldowns and invalid keys are published there and polled back in the background,
   * so instances honour each other's (src/gateway/shared-health.ts). Absent: this instance's own view only.
   */
  shared?: SharedState
  /** how often the shared state is read (default 250 ms; 0 publishes without reading) */
  sharedPollMs?: number
}

/** One thing asked of whichever provider serves: how an ingress API reaches the adapters. */
export interface Operation<T> {
  /** the model name the client asked for */
  model: string
  /** what is asked, for the error when no target's provider can do it ('embeddings') */
  what: string
  call: (adapter: ProviderAdapter, ctx: CallContext) => Promise<T>
  /** whether a provider's adapter can do it at all; every adapter can when absent */
  supports?: (adapter: ProviderAdapter) => boolean
  /** a stream: the value is primed (first chunk in hand) and booked when it ends */
  stream?: boolean
}

type OpSpec<T> = Operation<T>

export class Gateway {
  readonly #deps: GatewayDeps
  readonly #clock: Clock
  readonly #random: () => number
  readonly #keys: KeySelector
  readonly #registry: HealthRegistry
  readonly #shared: SharedHealth | null
  readonly #adapters = new WeakMap<ProviderConfig, ProviderAdapter>()
  readonly #policies = new WeakMap<ConfigSnapshot, Map<string, EffectivePolicy>>()

  constructor(deps: GatewayDeps) {
    this.#deps = deps
    this.#clock = deps.clock ?? systemClock
    this.#random = deps.random ?? Math.random
    this.#keys = new KeySelector(this.#random)
    this.#shared = deps.shared ? new SharedHealth({ state: deps.shared, pollMs: deps.sharedPollMs }) : null
    this.#registry = new HealthRegistry({ clock: this.#clock, events: deps.events, sink: deps.healthSink, shared: this.#shared ?? undefined })
    // Restore persisted health now, so an invalid key or open circuit is known (and logged) at start.
    this.#registry.sync(deps.config())
    // Off the request path: the poll follows the config snapshot first (a re-enable must be seen
    // before a mark of the key's new epoch), then reads every shared key this instance knows at once.
    this.#shared?.start({
      watched: () => {
        this.#registry.sync(this.#deps.config())
        return this.#registry.sharedKeys()
      },
      observe: (keys, values) => this.#registry.observe(keys, values),
    })
  }

  /** Reads the shared state now (tests; the background poll does this every sharedPollMs). */
  pollShared(): Promise<void> {
    return this.#shared?.poll() ?? Promise.resolve()
  }

  /** Stops the shared-state poll; the gateway still serves (with this instance's own view). */
  close(): void {
    this.#shared?.stop()
  }

  chat(req: ChatRequest, caller: Caller): Promise<Served<ChatCompletion>> {
    return this.#run(caller, { model: req.model, what: 'chat', call: (a, ctx) => a.chat(req, ctx) })
  }

  chatStream(req: ChatRequest, caller: Caller): Promise<Served<AsyncIterable<ChatCompletionChunk>>> {
    return this.#run(caller, { model: req.model, what: 'chat', stream: true, call: (a, ctx) => a.chatStream(req, ctx).then(primeStream) })
  }

  completion(req: CompletionRequest, caller: Caller): Promise<Served<Completion>> {
    return this.#run(caller, { model: req.model, what: 'completions', call: (a, ctx) => a.completion!(req, ctx), supports: (a) => !!a.completion })
  }

  completionStream(req: CompletionRequest, caller: Caller): Promise<Served<AsyncIterable<Completion>>> {
    return this.#run(caller, {
      model: req.model,
      what: 'completions',
      stream: true,
      call: (a, ctx) => a.completionStream!(req, ctx).then(primeStream),
      supports: (a) => !!a.completionStream,
    })
  }

  embeddings(req: EmbeddingRequest, caller: Caller): Promise<Served<EmbeddingResponse>> {
    return this.#run(caller, { model: req.model, what: 'embeddings', call: (a, ctx) => a.embeddings!(req, ctx), supports: (a) => !!a.embeddings })
  }

  /**
   * Runs an operation through the attempt plan (keys, retries, circuits, fallback). A stream's value must
   * be primed (`primeStream`), so that a failure before its first chunk still falls back.
   */
  run<T>(caller: Caller, op: Operation<T>): Promise<Served<T>> {
    return this.#run(caller, op)
  }

  models(client: ClientConfig): ModelObject[] {
    return visibleRoutes(this.#deps.config(), client).map(toModelObject)
  }

  model(client: ClientConfig, id: string): ModelObject {
    return toModelObject(resolveRoute(this.#deps.config(), id, client))
  }

  /** Per-provider and per-key state: circuits, key health, cooldowns, in-flight and recent outcomes. Never secrets. */
  health(): GatewayHealth {
    const snapshot = this.#deps.config()
    return this.#registry.health(snapshot, snapshot.globalPolicy.circuit)
  }

  /** The policy a request of this client for this route runs under. */
  policyFor(snapshot: ConfigSnapshot, route: RouteConfig, client: ClientConfig | null): EffectivePolicy {
    const routePolicy = route.policy && snapshot.policies.has(route.policy) ? route.policy : null
    const clientPolicy = client?.policy && snapshot.policies.has(client.policy) ? client.policy : null
    if (!routePolicy && !clientPolicy) return snapshot.globalPolicy
    let cache = this.#policies.get(snapshot)
    if (!cache) this.#policies.set(snapshot, (cache = new Map()))
    const cacheKey = `${routePolicy ?? ''}\u0000${clientPolicy ?? ''}`
    let policy = cache.get(cacheKey)
    if (!policy) {
      policy = effectivePolicy({
        global: snapshot.policies.get(GLOBAL_POLICY),
        route: routePolicy ? snapshot.policies.get(routePolicy) : null,
        client: clientPolicy ? snapshot.policies.get(clientPolicy) : null,
      })
      cache.set(cacheKey, policy)
    }
    return policy
  }

  async #run<T>(caller: Caller, spec: OpSpec<T>): Promise<Served<T>> {
    const snapshot = this.#deps.config()
    this.#registry.sync(snapshot)
    const route = resolveRoute(snapshot, spec.model, caller.client)
    const policy = this.policyFor(snapshot, route, caller.client)
    const clock = this.#clock
    const attempts = caller.attempts
    const deadline = clock.now() + policy.timeouts_ms.budget
    const planner = new AttemptPlanner({
      snapshot,
      route,
      policy,
      registry: this.#registry,
      selector: this.#keys,
      random: this.#random,
      unsupported: (target) => this.#unsupported(target, spec, caller),
      keyless: (provider) => isKeyless(provider.type),
      pin: caller.pin,
    })
    let lastError: ProxyError | null = null
    let outOfTime = false

    while (attempts.length < policy.retry.max_attempts && !caller.signal.aborted) {
      const now = clock.now()
      if (now >= deadline) {
        outOfTime = true
        break
      }
      const step = planner.next(now)
      if (step.kind === 'done') break
      let waited = 0
      if (step.kind === 'wait') {
        // Every candidate is cooling down after a 429: wait for the first to come back, but only for a
        // short pause (the backoff cap) within the budget. A longer cooldown is the client's to wait out:
        // it gets the 429 with Retry-After at once instead of a request that hangs without a word.
        if (step.ms > policy.retry.backoff_ms.max) break
        if (now + step.ms >= deadline) {
          outOfTime = true
          break
        }
        if (!(await this.#sleep(step.ms, caller.signal))) break
        continue
      }
      const { candidate } = step
      const wait = planner.waitBefore(candidate)
      if (wait > 0) {
        if (now + wait >= deadline) {
          outOfTime = true
          break
        }
        if (!(await this.#sleep(wait, caller.signal))) break
        waited = wait
      }
      if (caller.beforeAttempt) {
        const refused = await caller.beforeAttempt(candidate.target)
        if (refused) {
          lastError = refused
          planner.skipProvider(candidate.target.provider)
          continue
        }
      }
      const lease = this.#registry.acquire(candidate.target.provider, candidate.key, policy.circuit, clock.now())
      if (!lease) continue // a circuit filled its half-open probes meanwhile
      const span = caller.trace?.attempt(candidate.target)
      const outcome = await this.#attempt(candidate, lease, caller, policy, deadline, spec, span)
      // Optional fields are set, not spread in: a spread of `cond ? {…} : {}` makes a throwaway object
      // per field, and this runs on every request.
      const record: AttemptRecord = {
        provider: candidate.target.provider.name,
        upstreamModel: candidate.target.upstreamModel,
        key: candidate.key?.label ?? null,
        ms: outcome.ms,
      }
      if (waited > 0) record.waitedMs = waited
      if (candidate.fallback) record.fallback = candidate.fallback
      if (outcome.ok) {
        attempts.push(record)
        span?.end(record)
        const served: Served<T> = { value: outcome.value, provider: record.provider, upstreamModel: record.upstreamModel, key: record.key, attempts, fallback: candidate.fallback }
        if (outcome.dropped !== null) served.droppedParams = outcome.dropped
        return served
      }
      const { error, failure } = outcome
      record.error = { status: error.status, code: error.code, message: error.message, reason: failure.reason }
      attempts.push(record)
      span?.end(record)
      planner.failed(candidate, failure)
      lastError = error
      if (!failure.fallback) break
    }
    throw this.#finalError(lastError, planner, route, caller, outOfTime ? policy.timeouts_ms.budget : null)
  }

  /** One upstream call under the attempt's timeouts; books its outcome in the health registry. */
  async #attempt<T>(
    candidate: Candidate,
    lease: Lease,
    caller: Caller,
    policy: EffectivePolicy,
    deadline: number,
    spec: OpSpec<T>,
    span: AttemptTrace | undefined,
  ): Promise<{ ok: true; value: T; ms: number; dropped: string[] | null } | { ok: false; error: ProxyError; failure: ReturnType<typeof classifyFailure>; ms: number }> {
    const clock = this.#clock
    const started = clock.now()
    const { timeouts_ms } = policy
    const remaining = Math.max(1, deadline - started)
    // One timer per attempt, cleared when it is done (AbortSignal.timeout would linger for `total`):
    // until the answer, the attempt has the rest of the request's budget and at most `total`; a stream
    // must also produce its first chunk within `first_byte`, and then finish within `total`.
    const t0 = performance.now()
    const limit = new LightAbort()
    const abortIn = (ms: number) => {
      const t = setTimeout(() => limit.abort(new DOMException('The upstream call ran out of time.', 'TimeoutError')), Math.max(1, ms))
      t.unref()
      return t
    }
    let timer = abortIn(Math.min(remaining, timeouts_ms.total, spec.stream ? timeouts_ms.first_byte : Infinity))
    // The client going away aborts the attempt too. Linked by hand: AbortSignal.any costs several times
    // more per call (weak references and a finalization registry), and this runs once per attempt.
    const clientSignal = caller.signal
    const onClientAbort = () => limit.abort(clientSignal.reason)
    const unlink = () => clientSignal.removeEventListener('abort', onClientAbort)
    if (clientSignal.aborted) limit.abort(clientSignal.reason)
    else clientSignal.addEventListener('abort', onClientAbort, { once: true })
    // made only when an adapter drops a parameter, which few requests see
    let dropped: string[] | null = null
    const ctx: CallContext = {
      apiKey: candidate.key?.secret ?? null,
      upstreamModel: candidate.target.upstreamModel,
      signal: limit,
      requestId: caller.requestId,
      timeouts: { firstByteMs: Math.min(timeouts_ms.first_byte, remaining) },
      warn: (param) => void (dropped ??= []).push(param),
    }
    if (caller.passHeaders) ctx.passHeaders = caller.passHeaders
    if (span) ctx.traceHeaders = span.headers
    try {
      const adapter = this.#adapterFor(candidate.target.provider)
      const answer = await spec.call(adapter, ctx)
      clearTimeout(timer)
      this.#registry.succeeded(lease)
      if (!spec.stream) {
        unlink()
        this.#registry.end(lease)
      }
      let value: T = answer
      if (spec.stream) {
        timer = abortIn(timeouts_ms.total - (performance.now() - t0))
        value = watchStream(answer as AsyncIterable<unknown>, {
          // a failure after the first chunk reaches the client as an error event; the circuits still hear of it
          failed: (err) => {
            if (lease.ended) return
            const error = asProxyError(err, caller.requestId)
            this.#registry.failed(lease, classifyFailure(error, caller.signal.aborted, clock.now()), error.message, policy, null)
          },
          ended: () => {
            clearTimeout(timer)
            unlink()
            this.#registry.end(lease)
          },
        }) as T
      }
      return { ok: true, value, ms: clock.now() - started, dropped }
    } catch (err) {
      clearTimeout(timer)
      unlink()
      const error = asProxyError(err, caller.requestId)
      const failure = classifyFailure(error, caller.signal.aborted, clock.now())
      this.#registry.failed(lease, failure, error.message, policy)
      this.#registry.end(lease)
      return { ok: false, error, failure, ms: clock.now() - started }
    }
  }

  #unsupported(target: RouteTarget, spec: OpSpec<unknown>, caller: Caller): ProxyError | null {
    let adapter: ProviderAdapter
    try {
      adapter = this.#adapterFor(target.provider)
    } catch (err) {
      return asProxyError(err, caller.requestId)
    }
    if (!spec.supports || spec.supports(adapter)) return null
    return new ProxyError({
      status: 400,
      type: 'invalid_request_error',
      code: 'unsupported_operation',
      param: 'model',
      message: `Model '${spec.model}' is served by provider '${target.provider.name}' (${target.provider.type}), which does not support ${spec.what}.`,
    })
  }

  /** Sleeps through the clock; false when the client went away meanwhile. */
  async #sleep(ms: number, client: SignalLike): Promise<boolean> {
    if (client.aborted) return false
    // Waits are rare (backoff, Retry-After): an AbortSignal for the clock is made only for them.
    const wake = abortSignalFor(client)
    try {
      await this.#clock.sleep(ms, wake.signal)
      return !client.aborted
    } catch {
      return false
    } finally {
      wake.unlink()
    }
  }

  #adapterFor(provider: ProviderConfig): ProviderAdapter {
    let adapter = this.#adapters.get(provider)
    if (!adapter) {
      adapter = createAdapter({ name: provider.name, type: provider.type, baseUrl: provider.baseUrl, settings: provider.settings }, { dispatcher: this.#deps.dispatcher })
      this.#adapters.set(provider, adapter)
    }
    return adapter
  }

  #finalError(last: ProxyError | null, planner: AttemptPlanner, route: RouteConfig, caller: Caller, budgetMs: number | null): ProxyError {
    if (caller.signal.aborted) {
      return new ProxyError({ status: 499, type: 'invalid_request_error', code: 'client_closed_request', message: 'The client closed the request.' })
    }
    if (last) return last
    if (budgetMs !== null) {
      return new ProxyError({
        status: 504,
        type: 'timeout_error',
        code: 'budget_exhausted',
        message: `No upstream answered for model '${route.model}' within the policy's time budget (${budgetMs} ms).`,
      })
    }
    if (planner.unsupported) return planner.unsupported
    const now = this.#clock.now()
    const { reasons, retryAt } = planner.explain(now)
    const providers = [...new Set(route.targets.map((t) => t.provider.name))].join(', ')
    if (reasons.length === 0) {
      return new ProxyError({
        status: 503,
        type: 'service_unavailable',
        code: 'no_upstream_keys',
        message: `No usable upstream for model '${route.model}': provider(s) ${providers} have no active key or are disabled. Add one with 'proxy keys add <provider>'.`,
      })
    }
    const everyKeyless = reasons.every((r) => r.endsWith('has no active key') || r.endsWith('is disabled'))
    return new ProxyError({
      status: 503,
      type: 'service_unavailable',
      code: everyKeyless ? 'no_upstream_keys' : 'upstream_unavailable',
      message: `No usable upstream for model '${route.model}': ${reasons.join('; ')}.${everyKeyless ? " Add a key with 'proxy keys add <provider>'." : " See 'proxy circuit ls' and 'proxy keys ls'."}`,
      headers: retryAt !== null ? { 'retry-after': String(Math.max(1, Math.ceil((retryAt - now) / 1000))) } : {},
    })
  }
}

function toModelObject(route: RouteConfig): ModelObject {
  return { id: route.model, object: 'model', created: route.createdAt, owned_by: route.targets[0]?.provider.name ?? 'proxy' }
}
