import { internalError, isProxyError, type ProxyError } from '../core/errors.js'

/**
 * Anything thrown while handling a request, as a ProxyError: ours as they are; anything unknown becomes
 * a 500 that names the request id and leaks nothing else, with what was thrown along for the log line.
 */
export function asProxyError(err: unknown, requestId: string): ProxyError {
  return isProxyError(err) ? err : internalError(requestId, err)
}
