import type { H3Event } from 'h3'
import type { ProxyError } from '../core/errors.js'
import { acceptRequestId } from '../core/ids.js'
import type { Admission } from '../limits/limiter.js'
import type { RequestRecord } from '../telemetry/request-record.js'
import type { RequestTrace } from '../telemetry/tracing/types.js'

/** Per-request state: the record telemetry reports once the request is over. */
export interface RequestState {
  record: RequestRecord
  started: number
  /** set once telemetry has seen the record, so a request is never counted twice */
  reported: boolean
  /** the limits' admission, settled with the actual usage when the request finishes */
  admission?: Admission
  /** the request's span, when traces are on */
  trace?: RequestTrace
}

export function newRequestState(requestId: string, method: string, path: string, ip: string | null): RequestState {
  return {
    started: performance.now(),
    reported: false,
    record: {
      requestId,
      method,
      path,
      status: 0,
      ms: 0,
      client: null,
      model: null,
      stream: false,
      provider: null,
      upstreamModel: null,
      key: null,
      attempts: [],
      usage: null,
      error: null,
      ip,
    },
  }
}

const KEY = 'proxyRequest'

/** For the h3 routes: the state lives on the event, so the error hook finishes the record the route started. */
export function beginRequest(event: H3Event): RequestState {
  const state = newRequestState(acceptRequestId(event.req.headers.get('x-request-id')), event.req.method, event.url.pathname, (event.req as { ip?: string }).ip ?? null)
  ;(event.context as Record<string, unknown>)[KEY] = state
  event.res.headers.set('x-request-id', state.record.requestId)
  return state
}

export function requestState(event: H3Event): RequestState | undefined {
  return (event.context as Record<string, unknown>)[KEY] as RequestState | undefined
}

/** Notes the request's error for telemetry; for the proxy's own failures, with what was thrown. */
export function recordError(state: RequestState, error: ProxyError): void {
  state.record.error = { type: error.type, code: error.code, message: error.message }
  if (error.type === 'server_error' && error.cause !== undefined) state.record.error.cause = error.cause
}
