/**
 * The request lifecycle of every model call, whatever the client's API: authenticate, read and check
 * the body once, admit it against the limits, hand it to the gateway, write the answer in the API's own
 * shape (JSON, or SSE event by event), and account for it once. An ingress API brings an Endpoint (its
 * translators, and how to read usage from its answers) and a Shape (how its answers and errors are
 * written); nothing here is per API. Served on node:http directly, not through h3: see "The request
 * path: node:http, not h3" in docs/performance.md.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { ProxyError } from '../core/errors.js'
import { acceptRequestId } from '../core/ids.js'
import { rawJsonOf } from '../core/raw-json.js'
import { LightAbort } from '../core/signal-like.js'
import type { Caller, Served } from '../gateway/gateway.js'
import { roughCount, type CountFn } from '../limits/estimate.js'
import type { Admission, Limiter, SpendInput } from '../limits/limiter.js'
import type { ClientConfig, ConfigSnapshot } from '../core/config.js'
import type { RequestRecord, Telemetry } from '../telemetry/request-record.js'
import type { RequestTracer } from '../telemetry/tracing/types.js'
import { authenticateToken, tokenFrom } from './auth.js'
import { parseJsonBody, readNodeBody } from './body.js'
import { jsonText } from './json-text.js'
import { KEEP_REQUEST_BYTES_FROM, keepRequestBytes } from '../core/request-bytes.js'
import { asProxyError } from './proxy-error.js'
import { newRequestState, recordError, type RequestState } from './request-context.js'
import type { Shape } from './shape.js'
import type { ResponseCache } from './cache/response-cache.js'
import { noteCacheResult, writeCachedAnswer } from './cache/replay.js'
import { writeSse } from './sse.js'
import { serverShuttingDown } from './shutdown.js'
import { spendInput } from './spend.js'

export type RecordUsage = NonNullable<RequestRecord['usage']>

/** Watches one stream on its way to the client: what it reports as usage, and what text it carries. */
export interface StreamMeter<E> {
  /** sees each event before it is written; false leaves the event out */
  see(event: E): boolean
  /** the usage the stream reported, once it is over; null when it reported none */
  usage(): RecordUsage | null
  /** the tokens of the text the stream carried (for a stream that ended without usage) */
  streamed(count: CountFn): number
  /** the events that end this stream after a failure, when they depend on what it wrote (else the shape's) */
  failure?(error: ProxyError): string
}

/** One POST endpoint of one client API. */
export interface Endpoint<Req = any, Ans extends object = object, Ev extends object = object> {
  shape: Shape
  /** validates the parsed JSON body (a 400 in the API's shape when it is wrong) */
  parse(body: unknown): Req
  model(req: Req): string
  streams(req: Req): boolean
  /** the request's token estimate for token limits, given a text counter */
  tokens(req: Req, count: CountFn): number
  /** the prompt part of it, for a stream that ends without usage; 0 when absent */
  prompt?(req: Req, count: CountFn): number
  /** the most output tokens the request allows (max_tokens, times n), null when it sets none; absent: it costs no money */
  maxOutput?(req: Req): number | null
  call(req: Req, caller: Caller): Promise<Served<Ans>>
  callStream?(req: Req, caller: Caller): Promise<Served<AsyncIterable<Ev>>>
  usage(answer: Ans): RecordUsage | null
  meter?(req: Req): StreamMeter<Ev>
  /** the client's request headers a native upstream call forwards (e.g. anthropic-version) */
  passHeaders?(headers: IncomingHttpHeaders): Record<string, string> | undefined
  /** after a whole answer (JSON, or a stream that ended well): e.g. keep a stored response */
  completed?(req: Req, caller: Caller, served: Served<unknown>, answer: Ans | null, meter: StreamMeter<Ev> | null): void
}

/**
 * An endpoint whose code its first request loads (app.ts): a server that never serves an API neither
 * compiles it at start nor keeps its schemas in memory. Its shape is known before, for the errors of
 * the requests that wait for it.
 */
export interface DeferredEndpoint {
  shape: Shape
  load(): Promise<Endpoint>
}

/**
 * `load`, run by the first call and shared by every call while it runs and after it succeeds. A load
 * that failed is forgotten, so the next call tries again: a passing failure (too many open files) must
 * not disable what it loads until a restart.
 */
export function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | null = null
  return () =>
    (loading ??= load().catch((err: unknown) => {
      loading = null
      throw err
    }))
}

/**
 * One module's endpoints at these paths, as DeferredEndpoints: the first request to any of them loads
 * the module, once for all of them. A load that failed is tried again by the next request.
 */
export function deferEndpoints(shape: Shape, paths: readonly string[], load: () => Promise<Array<[string, Endpoint]>>): Array<[string, DeferredEndpoint]> {
  const loadAll = loadOnce(async () => new Map(await load()))
  return paths.map((path) => [
    path,
    {
      shape,
      load: async () => {
        const endpoint = (await loadAll()).get(path)
        if (!endpoint) throw new Error(`the module loaded for ${path} does not serve it`)
        return endpoint
      },
    },
  ])
}

export interface LifecycleDeps {
  config: () => ConfigSnapshot
  telemetry: Telemetry
  maxBodyBytes: number
  /** the deepest nesting of arrays and objects a body may have (checked before it is parsed) */
  maxJsonDepth?: number
  /** rate limits and quotas; none are applied without it */
  limits?: Limiter
  /** aborted at the drain deadline of a shutdown: open streams end with a `server_shutting_down` error event */
  shutdown?: AbortSignal
  /** the exact response cache (src/server/cache); consulted only where a policy turns it on */
  cache?: ResponseCache
  /** a span per request and per upstream attempt; absent when traces are off */
  tracer?: RequestTracer
}

type OutHeaders = Record<string, string>

/**
 * A node:http listener for the given endpoints (by path, POST only); it answers false for any other
 * request, which the caller hands on (to h3).
 */
export function postHandler(deps: LifecycleDeps, endpoints: ReadonlyMap<string, Endpoint | DeferredEndpoint>): (req: IncomingMessage, res: ServerResponse) => boolean {
  const routes = new Map(endpoints)
  return (req, res) => {
    if (req.method !== 'POST') return false
    const url = req.url ?? ''
    const q = url.indexOf('?')
    let path = q === -1 ? url : url.slice(0, q)
    // a trailing slash names the same endpoint (some clients join base URL and path that way)
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
    const route = routes.get(path)
    if (!route) return false
    // once loaded, a deferred endpoint takes its place, and later requests do not wait on a promise
    const endpoint = 'load' in route ? route.load().then((loaded) => (routes.set(path, loaded), loaded)) : route
    // serve() answers every failure itself; this only keeps a bug in that answer from becoming an
    // unhandled rejection that takes the process down
    serve(deps, endpoint, route.shape, path, req, res).catch(() => res.destroy())
    return true
  }
}

async function serve(deps: LifecycleDeps, given: Endpoint | Promise<Endpoint>, shape: Shape, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const h = req.headers
  const state = newRequestState(acceptRequestId(one(h['x-request-id'])), 'POST', path, req.socket.remoteAddress ?? null)
  const out: OutHeaders = { 'x-request-id': state.record.requestId }
  if (deps.tracer) {
    state.trace = deps.tracer.start('POST', path, h)
    state.record.traceId = state.trace.traceId
  }
  // Aborted when the client goes away before its answer is complete.
  const link = new LightAbort()
  const onClose = () => {
    if (!res.writableFinished) link.abort(new DOMException('The client closed the request.', 'AbortError'))
  }
  // on(), not once(): once() wraps the listener in two more objects, and it is removed by hand anyway
  res.on('close', onClose)
  try {
    // awaited first: a load that failed is this request's error (a 500 in its API's shape), never unhandled
    const endpoint = given instanceof Promise ? await given : given
    const client = authenticateToken(tokenFrom(one(h.authorization), one(h['api-key']) ?? one(h['x-api-key'])), deps.config())
    state.record.client = client.name
    if (client.team) state.record.team = client.team.name
    const bytes = await readNodeBody(req, deps.maxBodyBytes)
    const body = parseJsonBody(jsonText(bytes), deps.maxJsonDepth)
    deps.telemetry.captureRequest?.(state.record, client, body)
    const request = endpoint.parse(body)
    // passed on natively, a large request goes out as these bytes where the proxy leaves it unchanged
    if (bytes.length >= KEEP_REQUEST_BYTES_FROM) keepRequestBytes(request as object, bytes)
    const model = endpoint.model(request)
    state.record.model = model
    const spend = deps.limits && endpoint.maxOutput ? spendInput(deps.config(), endpoint, request, model) : undefined
    const limitHeaders = await admit(deps, state, client, model, (count) => endpoint.tokens(request, count), spend)
    if (limitHeaders) Object.assign(out, limitHeaders)
    const caller: Caller = { client, requestId: state.record.requestId, signal: link, attempts: state.record.attempts }
    const admission = state.admission
    if (admission?.providerBudgets) caller.beforeAttempt = (target) => admission.reserveProvider(target.provider, target.upstreamModel)
    const pass = endpoint.passHeaders?.(h)
    if (pass) caller.passHeaders = pass
    if (state.trace) caller.trace = state.trace

    // --- response cache: a hit is answered here; a miss is kept once answered (null: no cache policy)
    const cacheLookup = deps.cache?.enabled() ? deps.cache.lookup({ path, body, model, client, headers: h, stream: !!endpoint.callStream && endpoint.streams(request), passHeaders: pass }) : null
    const cached = cacheLookup ? await cacheLookup : null
    if (cached) noteCacheResult(out, state.record, cached)
    if (cached?.result === 'hit') {
      res.off('close', onClose)
      writeCachedAnswer(res, out, state.record, cached.answer, state.started)
      finish(deps, state, 200)
      return
    }
    const cacheMiss = cached?.result === 'miss' ? cached : null
    // --- end response cache

    if (endpoint.callStream && endpoint.streams(request)) {
      state.record.stream = true
      const served = await endpoint.callStream(request, caller)
      describe(out, state, served)
      deps.telemetry.streamStarted?.(state.record, performance.now() - state.started)
      out['content-type'] = 'text/event-stream; charset=utf-8'
      out['cache-control'] = 'no-cache'
      out['x-accel-buffering'] = 'no'
      res.writeHead(200, out)
      // The headers go out with the first event, in one write.
      const meter = endpoint.meter?.(request) ?? null
      const recorder = cacheMiss ? deps.cache!.recorder(cacheMiss, endpoint.shape) : null
      await writeSse<object>(served.value, res, {
        shape: meter?.failure ? { ...endpoint.shape, streamError: (e) => meter.failure!(e) } : endpoint.shape,
        toError: (err) => asProxyError(err, state.record.requestId),
        shutdown: deps.shutdown,
        shutdownError: serverShuttingDown,
        onFirstWrite: () => {
          state.record.ttftMs = Math.round((performance.now() - state.started) * 100) / 100
          state.trace?.firstByte()
        },
        onChunk: (event) => {
          state.record.capture?.chunk(event)
          state.trace?.chunk(event)
          const keep = meter ? meter.see(event) : true
          if (keep) recorder?.see(event)
          return keep
        },
        onEnd: ({ error, cancelled }) => {
          res.off('close', onClose)
          if (error) recordError(state, error)
          if (meter) {
            state.record.usage = meter.usage()
            if (!state.record.usage) countStreamed(deps, endpoint, request, state, meter)
          }
          if (!error && !cancelled) {
            endpoint.completed?.(request, caller, served, null, meter)
            recorder?.end(served, state.record.usage)
          }
          finish(deps, state, cancelled ? 499 : 200)
        },
      })
      return
    }

    const served = await endpoint.call(request, caller)
    res.off('close', onClose)
    describe(out, state, served)
    state.record.usage = endpoint.usage(served.value)
    if (state.record.capture) state.record.capture.response = served.value
    // The upstream's own bytes when the answer went through unchanged.
    const answer = rawJsonOf(served.value) ?? JSON.stringify(served.value)
    out['content-type'] = 'application/json'
    out['content-length'] = String(typeof answer === 'string' ? Buffer.byteLength(answer) : answer.length)
    state.trace?.answer(served.value)
    state.trace?.firstByte()
    res.writeHead(200, out)
    res.end(answer)
    endpoint.completed?.(request, caller, served, served.value, null)
    if (cacheMiss) deps.cache!.rememberJson(cacheMiss, served.value, typeof answer === 'string' ? answer : answer.toString('utf8'), served, state.record.usage)
    // Accounting (limits settled, log line, metrics, audit) after the answer is on its way: it is the
    // same work either way, but before the write the client waited for it. Nothing runs in between
    // (this is one synchronous turn), so the client's next request still finds its usage settled.
    finish(deps, state, 200)
  } catch (err) {
    res.off('close', onClose)
    fail(deps, shape, state, res, err)
  }
}

/**
 * A stream that ended without the upstream's usage (the client left, or the upstream reports none) is
 * accounted for what it carried: the prompt estimate plus the tokens streamed, marked as counted, so the
 * limits charge at least the pre-call estimate.
 */
function countStreamed(deps: LifecycleDeps, endpoint: Endpoint, request: unknown, state: RequestState, meter: StreamMeter<object>): void {
  const count = deps.limits?.textCounter() ?? roughCount
  const prompt = endpoint.prompt ? endpoint.prompt(request, count) : 0
  const completion = meter.streamed(count)
  state.record.usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  state.record.usageEstimated = true
}

/** Where the answer came from, in x-proxy-* headers and in the request record. */
function describe(out: OutHeaders, state: RequestState, served: Served<unknown>): void {
  state.record.provider = served.provider
  state.record.upstreamModel = served.upstreamModel
  state.record.key = served.key
  out['x-proxy-provider'] = served.provider
  out['x-proxy-model'] = served.upstreamModel
  out['x-proxy-attempts'] = String(served.attempts.length)
  // what kind of fallback served: 'key' (another key of the first provider), 'provider' (a later target), 'global' (the global route)
  if (served.fallback) out['x-proxy-fallback'] = served.fallback
  if (served.droppedParams?.length) out['x-proxy-dropped-params'] = [...new Set(served.droppedParams)].join(',')
  const budgetLeft = state.admission?.budgetRemaining()
  if (budgetLeft) out['x-proxy-budget-remaining'] = budgetLeft
}

/** An error answer in the API's shape; errors after the limit check still carry the x-ratelimit-* headers. */
function fail(deps: LifecycleDeps, shape: Shape, state: RequestState, res: ServerResponse, err: unknown): void {
  const error = asProxyError(err, state.record.requestId)
  recordError(state, error)
  if (!res.headersSent && !res.destroyed) writeError(shape, state, res, error)
  // after the answer, as for a success
  finish(deps, state, error.status)
}

function writeError(shape: Shape, state: RequestState, res: ServerResponse, error: ProxyError): void {
  const headers: OutHeaders = { 'content-type': 'application/json', 'x-request-id': state.record.requestId }
  const limitHeaders = state.admission?.headers
  if (limitHeaders) Object.assign(headers, limitHeaders)
  if (state.record.cache) headers['x-proxy-cache'] = state.record.cache
  Object.assign(headers, error.headers)
  // An oversized body was not read to its end: the connection cannot carry another request.
  if (error.status === 413) headers.connection = 'close'
  const { status, body, headers: more } = shape.error(error)
  if (more) Object.assign(headers, more)
  headers['content-length'] = String(Buffer.byteLength(body))
  res.writeHead(status, headers)
  res.end(body)
}

/**
 * Checks the request against every limit and quota that applies (throws a 429 or 503 when refused) and
 * returns the x-ratelimit-* headers for the answer; the admission is settled with the actual usage in finish().
 */
export async function admit(deps: Pick<LifecycleDeps, 'limits'>, state: RequestState, client: ClientConfig, model: string | null, tokens?: (count: CountFn) => number, spend?: SpendInput): Promise<Record<string, string> | undefined> {
  if (!deps.limits) return undefined
  let admission: Admission
  try {
    admission = await deps.limits.admit({ client, ip: state.record.ip, model, tokens, spend })
  } catch (err) {
    state.trace?.event('proxy.limits.refused')
    throw err
  }
  state.trace?.event('proxy.limits.admitted')
  state.admission = admission
  return admission.headers
}

/** The end of every request: the admission settled with the actual usage, the record reported once. */
export function finish(deps: { telemetry: Telemetry }, state: RequestState, status: number): void {
  if (state.reported) return
  state.reported = true
  state.record.status = status
  state.record.ms = Math.round((performance.now() - state.started) * 100) / 100
  state.admission?.settle({ usage: state.record.usage, served: state.record.provider !== null, estimated: state.record.usageEstimated, provider: state.record.provider, upstreamModel: state.record.upstreamModel })
  state.trace?.end(state.record)
  deps.telemetry.requestDone(state.record)
}

/**
 * An upstream's usage as the request record keeps it (total filled in when absent); the cached and
 * cache-write parts of the prompt are kept, as they are priced apart (src/core/prices.ts).
 */
export function normalizeUsage(u: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number; prompt_tokens_details?: { cached_tokens?: number; cache_creation_tokens?: unknown } | null }): RecordUsage {
  const prompt = u.prompt_tokens ?? 0
  const completion = u.completion_tokens ?? 0
  const record: RecordUsage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: u.total_tokens ?? prompt + completion }
  const details = u.prompt_tokens_details
  if (details) {
    if (typeof details.cached_tokens === 'number' && details.cached_tokens > 0) record.cached_tokens = details.cached_tokens
    if (typeof details.cache_creation_tokens === 'number' && details.cache_creation_tokens > 0) record.cache_write_tokens = details.cache_creation_tokens
  }
  return record
}

/** The same for a usage that may be absent. */
export const usageRecord = (u: Parameters<typeof normalizeUsage>[0] | null | undefined): RecordUsage | null => (u ? normalizeUsage(u) : null)

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
