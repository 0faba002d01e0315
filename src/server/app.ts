import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { H3, type H3Event } from 'h3'
import type { Registry } from 'prom-client'
import { toNodeHandler } from 'srvx/node'
import { methodNotAllowed } from '../core/errors.js'
import type { Gateway } from '../gateway/gateway.js'
import type { Limiter } from '../limits/limiter.js'
import type { ConfigSnapshot } from '../store/snapshot.js'
import type { Telemetry } from '../telemetry/request-record.js'
import { errorResponse, toProxyError } from './error-response.js'
import { beginRequest, recordError, requestState } from './request-context.js'
import { registerAdminRoutes, type AdminRouteDeps } from './routes/admin.js'
import { registerMetricsRoute } from './routes/metrics.js'
import { finish, registerModelRoutes, type OpenAIRouteDeps } from './routes/openai.js'
import { openAIPostHandler } from './routes/openai-post.js'
import { prepareShutdownSignal } from './shutdown.js'

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
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

/**
 * The server's request listener, built from its parts: the OpenAI POST endpoints (the hot path) on
 * node:http directly, everything else through the h3 app.
 */
export function createRequestListener(deps: AppDeps): RequestListener {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const openai = openAIDeps(deps)
  const post = openAIPostHandler(openai)
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
      const response = errorResponse(proxyError, state.record.requestId)
      // Errors after the limit check (an upstream failure, say) still report the limits, as successes do.
      const limitHeaders = state.admission?.headers
      if (limitHeaders) for (const name in limitHeaders) if (!response.headers.has(name)) response.headers.set(name, limitHeaders[name]!)
      return response
    },
  })

  app.get('/health', () => ({ status: 'ok' }))
  app.get('/readyz', (event) => {
    const readiness = deps.readiness()
    event.res.status = readiness.ready ? 200 : 503
    return { status: readiness.ready ? (readiness.checks.degraded ? 'degraded' : 'ready') : 'not_ready', checks: readiness.checks }
  })

  if (deps.admin) registerAdminRoutes(app, { ...deps.admin, maxBodyBytes: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, maxJsonDepth: deps.maxJsonDepth })
  if (deps.metrics) registerMetricsRoute(app, { registry: deps.metrics.registry, config: deps.config, requireAdmin: deps.metrics.requireAdmin })
  registerModelRoutes(app, openai)

  const only = (allowed: string[]) => (event: H3Event) => {
    beginRequest(event)
    throw methodNotAllowed(event.req.method, event.url.pathname, allowed)
  }
  for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) app.all(path, only(['POST']))
  for (const path of ['/v1/models', '/v1/models/**', '/health', '/readyz', ...(deps.metrics ? ['/metrics'] : [])]) app.all(path, only(['GET']))
  return app
}
