/**
 * The end of a graceful shutdown: when the drain deadline passes, start.ts aborts one server-wide
 * signal, and every SSE response still open ends with an OpenAI-shaped `error` event
 * (`server_shutting_down`) instead of a cut connection. Done as a middleware on the /v1 routes, so
 * the routes and the gateway need not know about it.
 */
import { setMaxListeners } from 'node:events'
import type { Middleware } from 'h3'
import { ProxyError } from '../core/errors.js'
import { endOnAbort } from './sse.js'

export const serverShuttingDown = () =>
  new ProxyError({
    status: 503,
    type: 'service_unavailable',
    code: 'server_shutting_down',
    message: 'The proxy is shutting down and ended this stream before it finished; send the request again.',
    retryable: true,
  })

export function endStreamsOnShutdown(signal: AbortSignal): Middleware {
  // One listener per open stream, removed when it ends: thousands are normal, not a leak.
  setMaxListeners(0, signal)
  return (event, next) => {
    const wrap = (value: unknown) =>
      value instanceof ReadableStream && event.res.headers.get('content-type')?.startsWith('text/event-stream') ? endOnAbort(value as ReadableStream<Uint8Array>, signal, serverShuttingDown) : value
    const value = next()
    return value instanceof Promise ? value.then(wrap) : wrap(value)
  }
}
