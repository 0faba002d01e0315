import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { Gateway } from '../gateway/gateway.js'
import type { Limiter } from '../limits/limiter.js'
import type { ConfigSnapshot } from '../core/config.js'
import type { Telemetry } from '../telemetry/request-record.js'
import type { RequestTracer } from '../telemetry/tracing/types.js'
import type { AdminRouteDeps } from './routes/admin.js'
import type { OpenAIRouteDeps } from './routes/openai.js'
import { deferEndpoints, loadOnce, postHandler, type DeferredEndpoint, type Endpoint } from './lifecycle.js'
import { chatEndpoints } from './chat/endpoints.js'
import { COUNT_TOKENS_PATH, MESSAGES_PATH, messagesShape } from './messages/shape.js'
import { RESPONSES_PATH, responsesShape } from './responses/shape.js'
import { roughCount } from '../limits/estimate.js'
import type { ResponseBook } from '../store/response-book.js'
import { prepareShutdownSignal } from './shutdown.js'
import type { ResponseCache } from './cache/response-cache.js'
import { probeHandler } from './probes.js'
import { ProxyError } from '../core/errors.js'

export interface Readiness {
  ready: boolean
  /** a check named `degraded` (ok, but serving with less than usual) makes the status 'degraded', still 200 */
  checks: Record<string, { ok: boolean; detail?: string }>
}

export interface AppDeps {
  gateway: Gateway
  config: () => ConfigSnapshot
  telemetry: Telemetry
  readiness: () => Readiness
  maxBodyBytes?: number
  /** deepest nesting of arrays and objects a request body may have; DEFAULT_MAX_JSON_DEPTH when absent */
  maxJsonDepth?: number
  /** GET /metrics from this registry; without it the path is not served */
  metrics?: { registry: Registry; requireAdmin: boolean }
  /** rate limits and quotas for /v1; none without it */
  limits?: Limiter
  /** the admin API under /admin/v1; not served without it */
  admin?: Omit<AdminRouteDeps, 'maxBodyBytes' | 'maxJsonDepth'>
  /** aborted at the drain deadline of a shutdown: open SSE responses end with a `server_shutting_down` error event */
  shutdown?: AbortSignal
  /** a span per model call and per upstream attempt; absent when traces are off */
  tracer?: RequestTracer
  /** Responses API objects the proxy keeps, and for how long; /v1/responses is not served without it */
  responses?: { book: ResponseBook; retentionMs: number }
  /** the exact response cache (docs/cache.md); none without it */
  cache?: ResponseCache
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

/** A node:http handler that may finish its answer later. */
type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown

/**
 * The server's request listener, built from its parts: the model calls of every client API (the hot
 * path) and the health probes on node:http directly, the model calls through one lifecycle
 * (lifecycle.ts); everything else through the h3 app (h3-app.ts). That app, h3 and node's own fetch
 * classes it builds on are loaded by the first request that needs them, not at start, so a server that
 * has just started answers its first probe sooner (docs/performance.md); so are the Messages and
 * Responses endpoints, which a server that serves only chat completions then never loads.
 */
export function createRequestListener(deps: AppDeps): RequestListener {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const openai = openAIDeps(deps)
  const responses = deps.responses
  const endpoints = new Map<string, Endpoint | DeferredEndpoint>([
    ...chatEndpoints(deps.gateway),
    ...deferEndpoints(messagesShape, [MESSAGES_PATH, COUNT_TOKENS_PATH], async () => {
      const { messagesEndpoints } = await import('./messages/endpoints.js')
      return messagesEndpoints(deps.gateway, () => deps.limits?.textCounter() ?? roughCount)
    }),
    ...(responses
      ? deferEndpoints(responsesShape, [RESPONSES_PATH], async () => {
          const { responsesEndpoint } = await import('./responses/endpoints.js')
          return [[RESPONSES_PATH, responsesEndpoint({ gateway: deps.gateway, ...responses })]]
        })
      : []),
  ])
  const post = postHandler(openai, endpoints)
  const probes = probeHandler(deps.readiness)
  let rest: NodeHandler | null = null
  const loadRest = loadOnce(async () => (rest = (await import('./h3-app.js')).h3Handler(deps, openai, maxBodyBytes)))
  return (req, res) => {
    // HEAD is GET without a body, on every GET route: node's response leaves the body out of a HEAD answer
    // by itself (it knew the method before this point), so the routes need not know.
    if (req.method === 'HEAD') req.method = 'GET'
    if (post(req, res) || probes(req, res)) return
    if (rest) {
      void rest(req, res)
      return
    }
    loadRest().then(
      (handle) => handle(req, res),
      (err: unknown) => {
        // A broken installation (a file of the package missing) or a passing failure (too many open
        // files): this request is answered with what failed, model calls and probes go on being
        // served, and the next request that needs these routes tries the load again.
        const error = new ProxyError({ status: 500, type: 'server_error', code: 'internal_error', message: `The proxy could not load its HTTP routes: ${String(err)}` })
        res.writeHead(error.status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(error.toJSON()))
      },
    )
  }
}

function openAIDeps(deps: AppDeps): OpenAIRouteDeps {
  return {
    gateway: deps.gateway,
    config: deps.config,
    telemetry: deps.telemetry,
    maxBodyBytes: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxJsonDepth: deps.maxJsonDepth,
    limits: deps.limits,
    shutdown: deps.shutdown ? prepareShutdownSignal(deps.shutdown) : undefined,
    cache: deps.cache,
    tracer: deps.tracer,
  }
}
