/**
 * The gateway: from a validated OpenAI request and an authenticated client to an upstream answer.
 * It resolves the model's route, orders the candidate (target, key) pairs, and walks them while the
 * failures are retryable. For streams it holds the response back until the first chunk has arrived,
 * so a failure before the first byte still falls back; after that, failures reach the client.
 */
import type { Dispatcher } from 'undici'
import { ProxyError } from '../core/errors.js'
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
import { withPolicyDefaults, type EffectivePolicy } from '../core/policy-schema.js'
import { createAdapter } from '../providers/index.js'
import type { CallContext, ProviderAdapter } from '../providers/types.js'
import type { ClientConfig, ConfigSnapshot, KeyConfig, ProviderConfig, RouteConfig } from '../store/snapshot.js'
import { KeySelector } from './key-selector.js'
import { resolveRoute, visibleRoutes } from './resolve-route.js'

export interface Caller {
  client: ClientConfig
  requestId: string
  /** the client's connection: aborted when it goes away */
  signal: AbortSignal
  /** filled in as attempts happen, so the caller can log them whether the request succeeds or fails */
  attempts: AttemptRecord[]
}

export interface AttemptRecord {
  provider: string
  upstreamModel: string
  key: string | null
  ms: number
  error?: { status: number; code: string | null; message: string }
}

export interface Served<T> {
  value: T
  provider: string
  upstreamModel: string
  key: string | null
  attempts: AttemptRecord[]
}

export interface GatewayDeps {
  config: () => ConfigSnapshot
  dispatcher: Dispatcher
}

type Operation<T> = (adapter: ProviderAdapter, ctx: CallContext) => Promise<T>

/** Providers that can be called without a key (local servers, the mock). */
const KEYLESS: ReadonlySet<string> = new Set(['mock', 'ollama', 'openai-compatible'])

export class Gateway {
  readonly #deps: GatewayDeps
  readonly #keys = new KeySelector()
  readonly #adapters = new WeakMap<ProviderConfig, ProviderAdapter>()
  readonly #policies = new WeakMap<RouteConfig, EffectivePolicy>()

  constructor(deps: GatewayDeps) {
    this.#deps = deps
  }

  chat(req: ChatRequest, caller: Caller): Promise<Served<ChatCompletion>> {
    return this.#run(req.model, caller, 'chat', (a, ctx) => a.chat(req, ctx))
  }

  chatStream(req: ChatRequest, caller: Caller): Promise<Served<AsyncIterable<ChatCompletionChunk>>> {
    return this.#run(req.model, caller, 'chat', (a, ctx) => a.chatStream(req, ctx).then(primeStream))
  }

  completion(req: CompletionRequest, caller: Caller): Promise<Served<Completion>> {
    return this.#run(req.model, caller, 'completions', (a, ctx) => a.completion!(req, ctx), (a) => !!a.completion)
  }

  completionStream(req: CompletionRequest, caller: Caller): Promise<Served<AsyncIterable<Completion>>> {
    return this.#run(req.model, caller, 'completions', (a, ctx) => a.completionStream!(req, ctx).then(primeStream), (a) => !!a.completionStream)
  }

  embeddings(req: EmbeddingRequest, caller: Caller): Promise<Served<EmbeddingResponse>> {
    return this.#run(req.model, caller, 'embeddings', (a, ctx) => a.embeddings!(req, ctx), (a) => !!a.embeddings)
  }

  models(client: ClientConfig): ModelObject[] {
    return visibleRoutes(this.#deps.config(), client).map(toModelObject)
  }

  model(client: ClientConfig, id: string): ModelObject {
    return toModelObject(resolveRoute(this.#deps.config(), id, client))
  }

  async #run<T>(model: string, caller: Caller, what: string, op: Operation<T>, supports: (a: ProviderAdapter) => boolean = () => true): Promise<Served<T>> {
    const snapshot = this.#deps.config()
    const route = resolveRoute(snapshot, model, caller.client)
    const policy = this.#policyFor(snapshot, route)
    const attempts = caller.attempts
    const budgetEnds = Date.now() + policy.timeouts_ms.budget
    let lastError: ProxyError | null = null

    for (const { target, key } of this.#candidates(route, policy)) {
      if (attempts.length >= policy.retry.max_attempts || Date.now() >= budgetEnds) break
      if (caller.signal.aborted) break
      const adapter = this.#adapterFor(target.provider)
      if (!supports(adapter)) {
        lastError = new ProxyError({
          status: 400,
          type: 'invalid_request_error',
          code: 'unsupported_operation',
          param: 'model',
          message: `Model '${model}' is served by provider '${target.provider.name}' (${target.provider.type}), which does not support ${what}.`,
        })
        continue
      }
      const started = Date.now()
      const ctx: CallContext = {
        apiKey: key?.secret ?? null,
        upstreamModel: target.upstreamModel,
        signal: AbortSignal.any([caller.signal, AbortSignal.timeout(policy.timeouts_ms.total)]),
        requestId: caller.requestId,
        timeouts: { firstByteMs: policy.timeouts_ms.first_byte, totalMs: policy.timeouts_ms.total },
      }
      try {
        const value = await op(adapter, ctx)
        attempts.push({ provider: target.provider.name, upstreamModel: target.upstreamModel, key: key?.label ?? null, ms: Date.now() - started })
        return { value, provider: target.provider.name, upstreamModel: target.upstreamModel, key: key?.label ?? null, attempts }
      } catch (err) {
        const error = toProxyError(err)
        attempts.push({
          provider: target.provider.name,
          upstreamModel: target.upstreamModel,
          key: key?.label ?? null,
          ms: Date.now() - started,
          error: { status: error.status, code: error.code, message: error.message },
        })
        lastError = error
        if (!error.retryable) break
      }
    }
    throw finalError(lastError, route, attempts)
  }

  /** (target, key) pairs in the order they are tried: each target's keys, then the next target. */
  *#candidates(route: RouteConfig, policy: EffectivePolicy): Generator<{ target: RouteConfig['targets'][number]; key: KeyConfig | null }> {
    const targets = policy.fallback.route_targets ? route.targets : route.targets.slice(0, 1)
    for (const target of targets) {
      if (!target.provider.enabled) continue
      const keys = this.#keys.order(target.provider)
      if (keys.length === 0) {
        if (KEYLESS.has(target.provider.type)) yield { target, key: null }
        continue
      }
      for (const key of policy.fallback.other_keys ? keys : keys.slice(0, 1)) yield { target, key }
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

  #policyFor(snapshot: ConfigSnapshot, route: RouteConfig): EffectivePolicy {
    if (!route.policy) return snapshot.globalPolicy
    let policy = this.#policies.get(route)
    if (!policy) {
      const doc = snapshot.policies.get(route.policy)
      policy = doc ? withPolicyDefaults({ ...snapshot.policies.get('global'), ...doc }) : snapshot.globalPolicy
      this.#policies.set(route, policy)
    }
    return policy
  }
}

function toModelObject(route: RouteConfig): ModelObject {
  return { id: route.model, object: 'model', created: route.createdAt, owned_by: route.targets[0]?.provider.name ?? 'proxy' }
}

function toProxyError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err
  return new ProxyError({
    status: 502,
    type: 'upstream_error',
    code: 'upstream_error',
    message: `The upstream call failed: ${err instanceof Error ? err.message : String(err)}`,
    retryable: true,
    cause: err,
  })
}

function finalError(last: ProxyError | null, route: RouteConfig, attempts: AttemptRecord[]): ProxyError {
  if (last) return last
  const providers = [...new Set(route.targets.map((t) => t.provider.name))].join(', ')
  return new ProxyError({
    status: 503,
    type: 'service_unavailable',
    code: attempts.length === 0 ? 'no_upstream_keys' : 'upstream_unavailable',
    message: `No usable upstream for model '${route.model}': provider(s) ${providers} have no active key or are disabled. Add one with 'proxy keys add <provider>'.`,
  })
}

/**
 * Waits for a stream's first chunk before handing it on, so an upstream that accepts the request and
 * then fails before producing anything is still a retryable failure rather than a broken client stream.
 */
async function primeStream<T>(stream: AsyncIterable<T>): Promise<AsyncIterable<T>> {
  const iterator = stream[Symbol.asyncIterator]()
  const first = await iterator.next()
  return {
    [Symbol.asyncIterator]() {
      let primed: IteratorResult<T> | null = first
      return {
        next() {
          if (primed) {
            const result = primed
            primed = null
            return Promise.resolve(result)
          }
          return iterator.next()
        },
        return(value?: unknown) {
          return iterator.return ? iterator.return(value) : Promise.resolve({ done: true as const, value: undefined as T })
        },
      }
    },
  }
}
