/**
 * The one mapping from upstream failures to ProxyError. `retryable` is decided here and only here:
 * rate limits, overload, 5xx, timeouts and broken connections are worth another attempt; a request the
 * upstream judged bad (400, 404, 422) will fail the same way anywhere, and a rejected key is the key's fault.
 */
import { ProxyError, type ProxyErrorInit } from '../../core/errors.js'
import type { SignalLike } from '../../core/signal-like.js'

/**
 * Why an upstream call failed, for the gateway's key-health and circuit bookkeeping. `key_rejected`
 * (401/403) is not retryable with the same key, but it is the key's fault, not the request's: the
 * gateway still tries the provider's other keys and the route's other targets.
 */
export type UpstreamFault = 'key_rejected' | 'rate_limited' | 'bad_request' | 'not_found' | 'server' | 'timeout' | 'network' | 'client_closed'

export class UpstreamError extends ProxyError {
  readonly fault: UpstreamFault
  /** the upstream's own HTTP status, when it answered */
  readonly upstreamStatus: number | null
  /** the upstream's own message (secrets redacted), when it answered with one */
  readonly detail: string | null

  constructor(init: ProxyErrorInit & { fault: UpstreamFault; upstreamStatus?: number | null; detail?: string | null }) {
    super(init)
    this.fault = init.fault
    this.upstreamStatus = init.upstreamStatus ?? null
    this.detail = init.detail ?? null
  }
}

export function upstreamFault(err: unknown): UpstreamFault | null {
  return err instanceof UpstreamError ? err.fault : null
}

export interface UpstreamErrorDetails {
  message?: string
  type?: string
  code?: string | null
  param?: string | null
}

/** Upstream messages sometimes echo (masked) keys; never pass anything key-shaped on. */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b(sk|pk|rk|key|sess)-[A-Za-z0-9_\-*.]{6,}/gi, '[redacted]')
    .replace(/\b[A-Za-z0-9]{32,}\b/g, '[redacted]')
}

/**
 * Removes the upstream key from text an upstream sent back. Providers echo a rejected key whole or
 * masked (a few leading and trailing characters around asterisks), in shapes no pattern can know, so
 * any word sharing a run of characters with the key goes.
 */
export function withoutKey(text: string, key: string | null): string {
  if (!key || key.length < 8) return text
  return text
    .split(/(\s+)/)
    .map((word) => (sharesRun(word, key, word.includes('*') ? 4 : 6) ? '[redacted]' : word))
    .join('')
}

function sharesRun(word: string, key: string, run: number): boolean {
  if (word.length < run) return false
  for (let i = 0; i + run <= key.length; i++) if (word.includes(key.slice(i, i + run))) return true
  return false
}

export function upstreamHttpError(provider: string, status: number, details: UpstreamErrorDetails, retryAfter?: string | null): ProxyError {
  const detail = details.message ? redactSecrets(details.message).slice(0, 500) : `HTTP ${status}`
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {}
  if (status === 401 || status === 403) {
    return new UpstreamError({
      fault: 'key_rejected',
      upstreamStatus: status,
      status: 502,
      type: 'upstream_error',
      code: 'upstream_auth_failed',
      message: `Provider '${provider}' rejected the proxy's upstream key (${status}): ${detail}. Check it with 'proxy keys ls' and replace it with 'proxy keys rotate'.`,
    })
  }
  if (status === 429) {
    return new UpstreamError({
      fault: 'rate_limited',
      upstreamStatus: status,
      status: 429,
      type: 'rate_limit_error',
      code: details.code === 'insufficient_quota' ? 'insufficient_quota' : 'rate_limit_exceeded',
      message: `Provider '${provider}' is rate limiting the proxy: ${detail}`,
      retryable: true,
      headers,
    })
  }
  if (status === 404) {
    return new UpstreamError({
      fault: 'not_found',
      upstreamStatus: status,
      detail,
      status: 502,
      type: 'upstream_error',
      code: 'upstream_not_found',
      message: `Provider '${provider}' answered 404: ${detail}. The route's upstream model or the provider's base URL is probably wrong.`,
    })
  }
  if (status >= 400 && status < 500 && status !== 408 && status !== 409) {
    return new UpstreamError({
      fault: 'bad_request',
      upstreamStatus: status,
      status: status === 413 || status === 422 ? status : 400,
      type: 'invalid_request_error',
      code: details.code ?? null,
      param: details.param ?? null,
      message: `Provider '${provider}' rejected the request: ${detail}`,
    })
  }
  return new UpstreamError({
    fault: 'server',
    upstreamStatus: status,
    status: status === 504 ? 504 : 502,
    type: 'upstream_error',
    code: status === 529 ? 'upstream_overloaded' : 'upstream_unavailable',
    message: `Provider '${provider}' failed with ${status}: ${detail}`,
    retryable: true,
    headers,
  })
}

export function upstreamTimeout(provider: string, phase: 'first_byte' | 'total'): ProxyError {
  return new UpstreamError({
    fault: 'timeout',
    status: 504,
    type: 'timeout_error',
    code: 'upstream_timeout',
    message:
      phase === 'first_byte'
        ? `Provider '${provider}' did not start answering in time.`
        : `Provider '${provider}' did not finish answering in time.`,
    retryable: true,
  })
}

/**
 * An answer the adapter cannot read: not JSON, or not the shape the provider's API documents. The
 * upstream's fault, like a 5xx: it counts against the provider and the key, and another may serve.
 */
export function upstreamBadAnswer(provider: string, what: string, code = 'upstream_bad_response', cause?: unknown): ProxyError {
  return new UpstreamError({ fault: 'server', status: 502, type: 'upstream_error', code, message: `Provider '${provider}' sent ${what}.`, retryable: true, cause })
}

/**
 * What reading (translating) an upstream answer threw: a ProxyError as it is; anything else, say a
 * TypeError on a field that is missing, is the answer's fault, not the proxy's.
 */
export function answerFault(provider: string, err: unknown): ProxyError {
  return err instanceof ProxyError ? err : upstreamBadAnswer(provider, 'an answer the proxy could not read', 'upstream_bad_response', err)
}

/** Translates an upstream answer; see answerFault for what a failure means. */
export function readAnswer<T>(provider: string, translate: () => T): T {
  try {
    return translate()
  } catch (err) {
    throw answerFault(provider, err)
  }
}

/** Maps a thrown network-level error (undici, abort, reset) to a ProxyError. */
export function upstreamNetworkError(provider: string, err: unknown, clientSignal?: SignalLike): ProxyError {
  if (err instanceof ProxyError) return err
  if (clientSignal?.aborted) {
    // The call's signal also carries the total timeout (AbortSignal.any): that is the upstream's fault, not the client's.
    if ((clientSignal.reason as { name?: string } | undefined)?.name === 'TimeoutError') return upstreamTimeout(provider, 'total')
    return new UpstreamError({ fault: 'client_closed', status: 499, type: 'invalid_request_error', code: 'client_closed_request', message: 'The client closed the request.' })
  }
  const code = (err as { code?: string })?.code
  const name = (err as { name?: string })?.name
  // the first-byte timeout arrives as a ProxyError already (shared/http.ts); undici's own timeouts are off
  if (name === 'TimeoutError') return upstreamTimeout(provider, 'total')
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new UpstreamError({ fault: 'timeout', status: 504, type: 'timeout_error', code: 'upstream_timeout', message: `Could not connect to provider '${provider}' in time.`, retryable: true })
  }
  const reason = code ?? (err instanceof Error ? err.message : String(err))
  return new UpstreamError({
    fault: 'network',
    status: 502,
    type: 'upstream_error',
    code: 'upstream_unreachable',
    message: `Could not reach provider '${provider}' (${redactSecrets(reason)}).`,
    retryable: true,
    cause: err,
  })
}

/** Reads an error body of any shape providers use: OpenAI/Azure {error:{…}}, Anthropic {type:'error',error:{…}}, Ollama {error:'…'}. */
export function parseErrorBody(text: string): UpstreamErrorDetails {
  try {
    const body = JSON.parse(text) as Record<string, unknown>
    const error = body.error
    if (typeof error === 'string') return { message: error }
    if (error && typeof error === 'object') {
      const e = error as Record<string, unknown>
      return {
        message: typeof e.message === 'string' ? e.message : undefined,
        type: typeof e.type === 'string' ? e.type : undefined,
        code: typeof e.code === 'string' ? e.code : null,
        param: typeof e.param === 'string' ? e.param : null,
      }
    }
    if (typeof body.message === 'string') return { message: body.message }
  } catch {
    // not JSON: fall through to the raw text
  }
  return { message: text.trim().slice(0, 300) || undefined }
}
