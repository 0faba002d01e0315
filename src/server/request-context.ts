import type { H3Event } from 'h3'
import { acceptRequestId } from '../core/ids.js'
import type { Admission } from '../limits/limiter.js'
import type { RequestRecord } from '../telemetry/request-record.js'

/** Per-request state, kept on the event so the error hook can finish the same record the route started. */
export interface RequestState {
  record: RequestRecord
  started: number
  /** set once telemetry has seen the record, so a request is never counted twice */
  reported: boolean
  /** the limits' admission, settled with the actual usage when the request finishes */
  admission?: Admission
}

const KEY = 'proxyRequest'

export function beginRequest(event: H3Event): RequestState {
  const requestId = acceptRequestId(event.req.headers.get('x-request-id'))
  const state: RequestState = {
    started: performance.now(),
    reported: false,
    record: {
      requestId,
      method: event.req.method,
      path: event.url.pathname,
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
      ip: (event.req as { ip?: string }).ip ?? null,
    },
  }
  ;(event.context as Record<string, unknown>)[KEY] = state
  event.res.headers.set('x-request-id', requestId)
  return state
}

export function requestState(event: H3Event): RequestState | undefined {
  return (event.context as Record<string, unknown>)[KEY] as RequestState | undefined
}
