import { H3, type H3Event } from 'h3'
import { methodNotAllowed } from '../core/errors.js'
import type { Gateway } from '../gateway/gateway.js'
import type { ConfigSnapshot } from '../store/snapshot.js'
import type { Telemetry } from '../telemetry/request-record.js'
import { errorResponse, toProxyError } from './error-response.js'
import { beginRequest, requestState } from './request-context.js'
import { finish, registerOpenAIRoutes } from './routes/openai.js'

export interface Readiness {
  ready: boolean
  checks: Record<string, { ok: boolean; detail?: string }>
}

export interface AppDeps {
  gateway: Gateway
  config: () => ConfigSnapshot
  telemetry: Telemetry
  readiness: () => Readiness
  maxBodyBytes?: number
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

/** Builds the HTTP app from its parts; tests build it the same way with their own parts. */
export function createApp(deps: AppDeps): H3 {
  const app = new H3({
    silent: true,
    onError: (error, event) => {
      const state = requestState(event) ?? beginRequest(event)
      const proxyError = toProxyError(error, state.record.requestId, event.url.pathname)
      state.record.error = { type: proxyError.type, code: proxyError.code, message: proxyError.message }
      finish(deps, state, proxyError.status)
      return errorResponse(proxyError, state.record.requestId)
    },
  })

  app.get('/health', () => ({ status: 'ok' }))
  app.get('/readyz', (event) => {
    const readiness = deps.readiness()
    event.res.status = readiness.ready ? 200 : 503
    return { status: readiness.ready ? 'ready' : 'not_ready', checks: readiness.checks }
  })

  registerOpenAIRoutes(app, { gateway: deps.gateway, config: deps.config, telemetry: deps.telemetry, maxBodyBytes: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES })

  const only = (allowed: string[]) => (event: H3Event) => {
    beginRequest(event)
    throw methodNotAllowed(event.req.method, event.url.pathname, allowed)
  }
  for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) app.all(path, only(['POST']))
  for (const path of ['/v1/models', '/v1/models/**', '/health', '/readyz']) app.all(path, only(['GET']))
  return app
}
