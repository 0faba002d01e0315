import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { H3, type H3Event } from 'h3'
import type { Registry } from 'prom-client'
import { toNodeHandler } from 'srvx/node'
import { methodNotAllowed } from '../core/errors.js'
import type { Gateway } from '../gateway/gateway.js'
import type { Limiter } from '../limits/limiter.js'
import type { ConfigSnapshot } from '../core/config.js'
import type { Telemetry } from '../telemetry/request-record.js'
import type { RequestTracer } from '../telemetry/tracing/types.js'
import { errorResponse, SERVED_APIS, toProxyError } from './error-response.js'
import { beginRequest, recordError, requestState } from './request-context.js'
import { registerAdminRoutes, type AdminRouteDeps } from './routes/admin.js'
import { registerMetricsRoute } from './routes/metrics.js'
import { registerModelRoutes, type OpenAIRouteDeps } from './routes/openai.js'
import { finish, postHandler, type Endpoint } from './lifecycle.js'
import { chatEndpoints } from './chat/endpoints.js'
import { messagesEndpoints, messagesShape } from './messages/endpoints.js'
import { responsesEndpoint } from './responses/endpoints.js'
import { registerResponsesRoutes } from './responses/routes.js'
import { roughCount } from '../limits/estimate.js'
import type { ResponseBook } from '../store/response-book.js'
import { prepareShutdownSignal } from './shutdown.js'
import type { ResponseCache } from './cache/response-cache.js'

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

/**
 * The server's request listener, built from its parts: the model calls of every client API (the hot
 * path) on node:http directly, through one lifecycle (lifecycle.ts); everything else through the h3 app.
 */
export function createRequestListener(deps: AppDeps): RequestListener {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const openai = openAIDeps(deps)
  const endpoints = new Map<string, Endpoint>([
    ...chatEndpoints(deps.gateway),
    ...messagesEndpoints(deps.gateway, () => deps.limits?.textCounter() ?? roughCount),
    ...(deps.responses ? [['/v1/responses', responsesEndpoint({ gateway: deps.gateway, ...deps.responses })] as [string, Endpoint]] : []),
  ])
  const post = postHandler(openai, endpoints)
  const rest = toNodeHandler(createApp(deps, openai).fetch, { maxRequestBodySize: maxBodyBytes }) as (req: IncomingMessage, res: ServerResponse) => unknown
  return (req, res) => {
    // HEAD is GET without a body, on every GET route: node's response leaves the body out of a HEAD answer
    // by itself (it knew the method before this point), so the routes need not know.
    if (req.method === 'HEAD') req.method = 'GET'
    if (!post(req, res)) void rest(req, res)
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

/** The h3 app: every route but the OpenAI POST endpoints (see createRequestListener). */
function createApp(deps: AppDeps, openai: OpenAIRouteDeps): H3 {
  const app = new H3({
    silent: true,
    onError: (error, event) => {
      const state = requestState(event) ?? beginRequest(event)
      const proxyError = toProxyError(error, state.record.requestId, event.url.pathname)
      recordError(state, proxyError)
      finish(deps, state, proxyError.status)
      // Anthropic's clients (the model list with anthropic-version, anything under /v1/messages) get its shape
      const anthropic = event.url.pathname.startsWith('/v1/messages') || event.req.headers.has('anthropic-version')
      const response = anthropic ? shapedResponse(messagesShape.error(proxyError), state.record.requestId) : errorResponse(proxyError, state.record.requestId)
      // Errors after the limit check (an upstream failure, say) still report the limits, as successes do.
      const limitHeaders = state.admission?.headers
      if (limitHeaders) for (const name in limitHeaders) if (!response.headers.has(name)) response.headers.set(name, limitHeaders[name]!)
      return response
    },
  })

  app.get('/health', () => ({ status: 'ok' }))
  // Clients probe the base URL before their first call (Claude Code sends HEAD /), and people open it in
  // a browser: an answer that says where the APIs are, not a 404 in the audit trail for every session.
  app.get('/', () => ({ status: 'ok', service: 'proxy', message: SERVED_APIS }))
  app.get('/readyz', (event) => {
    const readiness = deps.readiness()
    event.res.status = readiness.ready ? 200 : 503
    return { status: readiness.ready ? (readiness.checks.degraded ? 'degraded' : 'ready') : 'not_ready', checks: readiness.checks }
  })

  if (deps.admin) registerAdminRoutes(app, { ...deps.admin, maxBodyBytes: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, maxJsonDepth: deps.maxJsonDepth })
  if (deps.metrics) registerMetricsRoute(app, { registry: deps.metrics.registry, config: deps.config, requireAdmin: deps.metrics.requireAdmin })
  registerModelRoutes(app, openai)
  if (deps.responses) registerResponsesRoutes(app, { ...openai, book: deps.responses.book })

  const only = (allowed: string[]) => (event: H3Event) => {
    beginRequest(event)
    throw methodNotAllowed(event.req.method, event.url.pathname, allowed)
  }
  for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/messages', '/v1/messages/count_tokens', ...(deps.responses ? ['/v1/responses'] : [])]) app.all(path, only(['POST']))
  for (const path of ['/', '/v1/models', '/v1/models/**', '/health', '/readyz', ...(deps.metrics ? ['/metrics'] : [])]) app.all(path, only(['GET']))
  if (deps.responses) {
    app.all('/v1/responses/*', only(['GET', 'DELETE']))
    app.all('/v1/responses/*/input_items', only(['GET']))
  }
  return app
}

function shapedResponse(answer: { status: number; body: string; headers?: Record<string, string> }, requestId: string): Response {
  const headers = new Headers({ 'content-type': 'application/json', 'x-request-id': requestId })
  for (const [name, value] of Object.entries(answer.headers ?? {})) headers.set(name, value)
  return new Response(answer.body, { status: answer.status, headers })
}
