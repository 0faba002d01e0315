/**
 * What a failed attempt means for the rest of the request and for upstream health. The classification
 * rests on UpstreamError.fault (set by the one upstream-error mapping), never on message text.
 */
import { internalError, ProxyError } from '../core/errors.js'
import { upstreamFault } from '../providers/shared/upstream-error.js'
import { parseRetryAfter } from './retry.js'

export type { FailureReason } from '../core/attempt.js'
import type { FailureReason } from '../core/attempt.js'

export interface FailureOutcome {
  reason: FailureReason
  /** an availability failure: feeds the provider's and the key's circuit breakers */
  availability: boolean
  /** another key or target may still serve the request */
  fallback: boolean
  /** from the upstream's Retry-After header */
  retryAfterMs: number | null
}

export function classifyFailure(error: ProxyError, clientGone: boolean, now: number): FailureOutcome {
  const retryAfterMs = parseRetryAfter(error.headers['retry-after'], now)
  if (clientGone) return { reason: 'client_closed', availability: false, fallback: false, retryAfterMs: null }
  switch (upstreamFault(error)) {
    // Not retryable with this key, but a dead key is not the request's fault: the next key may serve.
    case 'key_rejected':
      return { reason: 'key_rejected', availability: false, fallback: true, retryAfterMs: null }
    case 'rate_limited':
      return { reason: 'rate_limited', availability: false, fallback: true, retryAfterMs }
    case 'server':
      return { reason: 'server_error', availability: true, fallback: error.retryable, retryAfterMs }
    case 'timeout':
      return { reason: 'timeout', availability: true, fallback: true, retryAfterMs: null }
    case 'network':
      return { reason: 'connection', availability: true, fallback: true, retryAfterMs: null }
    case 'bad_request':
      return { reason: 'bad_request', availability: false, fallback: false, retryAfterMs: null }
    case 'not_found':
      return { reason: 'not_found', availability: false, fallback: false, retryAfterMs: null }
    case 'client_closed':
      return { reason: 'client_closed', availability: false, fallback: false, retryAfterMs: null }
    default:
      // Errors from outside the mapping (an adapter's own, or the proxy's): trust `retryable`.
      return { reason: 'error', availability: error.retryable, fallback: error.retryable, retryAfterMs }
  }
}

/**
 * Anything an attempt threw, as a ProxyError. Upstream failures arrive mapped already (adapters map them
 * through upstream-error.ts); anything else is the proxy's own failure or the client's input, never the
 * upstream's: a 500 of its own that is not retried and touches no key health or circuit.
 */
export function asProxyError(err: unknown, requestId: string): ProxyError {
  return err instanceof ProxyError ? err : internalError(requestId, err)
}
