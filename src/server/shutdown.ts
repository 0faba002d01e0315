/**
 * The end of a graceful shutdown: when the drain deadline passes, start.ts aborts one server-wide
 * signal, and every SSE response still open ends with an OpenAI-shaped `error` event
 * (`server_shutting_down`) instead of a cut connection (sse.ts). The gateway need not know about it.
 */
import { setMaxListeners } from 'node:events'
import { ProxyError } from '../core/errors.js'

export const serverShuttingDown = () =>
  new ProxyError({
    status: 503,
    type: 'service_unavailable',
    code: 'server_shutting_down',
    message: 'The proxy is shutting down and ended this stream before it finished; send the request again.',
    retryable: true,
  })

/** One listener per open stream, removed when it ends: thousands at once are normal, not a leak. */
export function prepareShutdownSignal(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal)
  return signal
}
