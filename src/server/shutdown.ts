/**
 * The end of a graceful shutdown: when the drain deadline passes, start.ts aborts one server-wide
 * signal, and every SSE response still open ends with an OpenAI-shaped `error` event
 * (`server_shutting_down`) instead of a cut connection. The gateway need not know about it.
 */
import { setMaxListeners } from 'node:events'
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

/**
 * Prepares the server-wide shutdown signal for the SSE responses that follow it (one listener per open
 * stream, removed when it ends: thousands are normal, not a leak) and returns the wrapper the stream
 * routes put around their body. Applied by the routes that stream, not as an h3 middleware on every
 * /v1 request: a JSON answer never needs it, and a middleware costs every request a matcher pass and a
 * promise hop.
 */
export function endStreamsOnShutdown(signal: AbortSignal): (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> {
  setMaxListeners(0, signal)
  return (body) => endOnAbort(body, signal, serverShuttingDown)
}
