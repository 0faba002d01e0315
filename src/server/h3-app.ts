import type { IncomingMessage, ServerResponse } from 'node:http'
import { H3, type H3Event } from 'h3'
import { toNodeHandler } from 'srvx/node'
import { methodNotAllowed } from '../core/errors.js'
import type { AppDeps } from './app.js'
import { errorResponse, SERVED_APIS, toProxyError } from './error-response.js'
import { beginRequest, recordError, requestState } from './request-context.js'
import { registerAdminRoutes } from './routes/admin.js'
import { registerMetricsRoute } from './routes/metrics.js'
import { registerModelRoutes, type OpenAIRouteDeps } from './routes/openai.js'
import { finish } from './lifecycle.js'
import { messagesShape } from './messages/shape.js'
import { registerResponsesRoutes } from './responses/routes.js'

/**
 * Every route but the model calls and the probes (app.ts), through h3: the model list, the admin API,
 * /metrics, stored responses, and the answers for wrong methods and unknown paths.
 */
export function h3Handler(deps: AppDeps, openai: OpenAIRouteDeps, maxBodyBytes: number): (req: IncomingMessage, res: ServerResponse) => unknown {
  return toNodeHandler(createApp(deps, openai).fetch, { maxRequestBodySize: maxBodyBytes }) as (req: IncomingMessage, res: ServerResponse) => unknown
}

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

  // Clients probe the base URL before their first call (Claude Code sends HEAD /), and people open it in
  // a browser: an answer that says where the APIs are, not a 404 in the audit trail for every session.
  app.get('/', () => ({ status: 'ok', service: 'proxy', message: SERVED_APIS }))

  if (deps.admin) registerAdminRoutes(app, { ...deps.admin, maxBodyBytes: openai.maxBodyBytes, maxJsonDepth: deps.maxJsonDepth })
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
