/**
 * The exact response cache: whether a request may be answered from it (a policy with `cache` applies, the
 * client did not opt out, the request is one that can be cached), the lookup, and keeping answers that
 * are whole. Nothing is hashed, and no store is asked, when no policy of the snapshot sets `cache`.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { ClientConfig, ConfigSnapshot, RouteConfig } from '../../core/config.js'
import type { CachePolicy, EffectivePolicy } from '../../core/policy-schema.js'
import type { Clock } from '../../gateway/clock.js'
import type { Served } from '../../gateway/gateway.js'
import { resolveRoute } from '../../gateway/resolve-route.js'
import type { RecordUsage } from '../lifecycle.js'
import type { Shape } from '../shape.js'
import { CACHE_APIS, requestBypass, StreamVerdict, wholeAnswer, type CacheApi } from './answers.js'
import { cacheKey, modelTag } from './key.js'
import type { CacheStats, CacheStore, CachedAnswer } from './store.js'

export type CacheResult = 'hit' | 'miss' | 'bypass'

export type CacheLookup =
  | { result: 'bypass'; reason: string }
  | { result: 'hit'; answer: CachedAnswer }
  | { result: 'miss'; key: string; api: CacheApi; model: string; policy: CachePolicy }

export type CacheMiss = Extract<CacheLookup, { result: 'miss' }>

export interface LookupInput {
  path: string
  body: unknown
  model: string
  client: ClientConfig
  headers: IncomingHttpHeaders
  stream: boolean
  /** the headers the upstream call forwards: they are part of the request */
  passHeaders?: Record<string, string>
}

export interface ResponseCacheDeps {
  config: () => ConfigSnapshot
  /** the policy a request of this client for this route runs under (the gateway's policyFor) */
  policyFor: (snapshot: ConfigSnapshot, route: RouteConfig, client: ClientConfig) => EffectivePolicy
  store: CacheStore
  clock: Clock
}

export class ResponseCache {
  readonly #deps: ResponseCacheDeps
  /** per snapshot: whether any policy sets `cache` at all */
  readonly #enabled = new WeakMap<ConfigSnapshot, boolean>()

  constructor(deps: ResponseCacheDeps) {
    this.#deps = deps
  }

  get store(): CacheStore {
    return this.#deps.store
  }

  /** Whether any policy of the current configuration sets `cache`: when none does, requests skip the cache entirely. */
  enabled(): boolean {
    return this.#anyPolicy(this.#deps.config())
  }

  /** null when no cache policy applies (the answer then carries no x-proxy-cache header) */
  lookup(input: LookupInput): Promise<CacheLookup> | null {
    const api = CACHE_APIS.get(input.path)
    if (!api) return null
    const snapshot = this.#deps.config()
    if (!this.#anyPolicy(snapshot)) return null
    let route: RouteConfig
    try {
      route = resolveRoute(snapshot, input.model, input.client)
    } catch {
      return null // the gateway answers with the reason
    }
    const policy = this.#deps.policyFor(snapshot, route, input.client).cache
    if (!policy) return null
    const body = input.body as Record<string, unknown>
    const optOut = optedOut(input.headers)
    if (optOut) return Promise.resolve({ result: 'bypass', reason: optOut })
    const reason = requestBypass(api, body, policy)
    if (reason) return Promise.resolve({ result: 'bypass', reason })
    const store = this.#deps.store
    if (!store.available()) return Promise.resolve({ result: 'bypass', reason: 'unavailable' })
    const hash = cacheKey({ api: input.path, body, stream: input.stream, route, headers: input.passHeaders, clientId: policy.per_client ? input.client.id : undefined })
    const key = `${modelTag(input.model)}:${hash}`
    const miss: CacheMiss = { result: 'miss', key, api, model: input.model, policy }
    return store.get(key, policy.max_bytes).then(
      (answer): CacheLookup => (answer ? { result: 'hit', answer } : miss),
      (): CacheLookup => ({ result: 'bypass', reason: 'unavailable' }),
    )
  }

  /** Keeps a JSON answer, when it is whole. `text` is the body exactly as it went out. */
  rememberJson(miss: CacheMiss, value: unknown, text: string, served: Served<unknown>, usage: RecordUsage | null): void {
    if (!wholeAnswer(miss.api, value as Record<string, unknown>)) return
    this.#keep(miss, { kind: 'json', body: text }, served, usage)
  }

  /** Records a stream as it goes out; kept at its end when it ended whole and stayed within max_bytes. */
  recorder(miss: CacheMiss, shape: Shape): StreamRecorder {
    return new StreamRecorder(miss, shape, (body, served, usage) => this.#keep(miss, { kind: 'sse', body }, served, usage))
  }

  stats(): Promise<CacheStats> {
    return this.#deps.store.stats()
  }

  /** Removes every answer, or those to requests for one model name. */
  clear(model?: string): Promise<number> {
    return this.#deps.store.clear(model === undefined ? undefined : modelTag(model))
  }

  #keep(miss: CacheMiss, body: Pick<CachedAnswer, 'kind' | 'body'>, served: Served<unknown>, usage: RecordUsage | null): void {
    const answer: CachedAnswer = { ...body, provider: served.provider, upstreamModel: served.upstreamModel, usage, model: miss.model, storedAt: this.#deps.clock.now() }
    this.#deps.store.set(miss.key, answer, miss.policy.ttl_ms, miss.policy.max_bytes)
  }

  #anyPolicy(snapshot: ConfigSnapshot): boolean {
    let on = this.#enabled.get(snapshot)
    if (on === undefined) {
      on = false
      for (const doc of snapshot.policies.values()) if (doc.cache) on = true
      this.#enabled.set(snapshot, on)
    }
    return on
  }
}

/** A streamed miss on its way out: its events as written, up to max_bytes, and whether it ended whole. */
export class StreamRecorder {
  readonly #verdict: StreamVerdict
  readonly #shape: Shape
  readonly #limit: number
  readonly #keep: (body: string, served: Served<unknown>, usage: RecordUsage | null) => void
  #parts: string[] | null = []
  #size = 0

  constructor(miss: CacheMiss, shape: Shape, keep: (body: string, served: Served<unknown>, usage: RecordUsage | null) => void) {
    this.#verdict = new StreamVerdict(miss.api)
    this.#shape = shape
    this.#limit = miss.policy.max_bytes
    this.#keep = keep
  }

  /** an event written to the client */
  see(event: object): void {
    if (this.#parts === null) return
    this.#verdict.see(event as Record<string, unknown>)
    const text = this.#shape.event(event)
    this.#size += text.length
    if (this.#size > this.#limit) this.#parts = null
    else this.#parts.push(text)
  }

  /** the stream ended well (no error, the client stayed) */
  end(served: Served<unknown>, usage: RecordUsage | null): void {
    if (this.#parts === null || !this.#verdict.whole) return
    this.#parts.push(this.#shape.done)
    this.#keep(this.#parts.join(''), served, usage)
    this.#parts = null
  }
}

/** The client's opt-out: `Cache-Control: no-store` or `x-proxy-cache: off`. */
function optedOut(h: IncomingHttpHeaders): string | null {
  const mine = h['x-proxy-cache']
  if (typeof mine === 'string' && mine.trim().toLowerCase() === 'off') return 'x-proxy-cache'
  const cc = h['cache-control']
  if (typeof cc === 'string' && /(^|[\s,])no-store([\s,;]|$)/i.test(cc)) return 'no-store'
  return null
}
