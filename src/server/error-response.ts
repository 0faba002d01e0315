import { HTTPError } from 'h3'
import { bodyTooLarge, pathNotFound, ProxyError, isProxyError } from '../core/errors.js'
import { asProxyError } from './proxy-error.js'

/** What a lost client is told: the APIs this proxy serves, and where. */
export const SERVED_APIS = "This proxy serves OpenAI's API under /v1 (chat/completions, responses, completions, embeddings, models) and Anthropic's Messages API (/v1/messages)."

/**
 * asProxyError for the h3 app's routes. h3 wraps thrown values in an HTTPError; unwrap it so our own
 * errors keep their type, code and headers, and h3's own (no route, a body too large) get ours.
 */
export function toProxyError(err: unknown, requestId: string, path: string): ProxyError {
  const original = err instanceof HTTPError && err.cause instanceof Error ? err.cause : err
  if (isProxyError(original)) return original
  if (original instanceof HTTPError || HTTPError.isError(original)) {
    const status = (original as HTTPError).status
    if (status === 404) return pathNotFound(path, SERVED_APIS)
    if (status === 413) return bodyTooLarge(Number(((original as HTTPError).data as { limit?: number } | undefined)?.limit ?? 0))
    if (status === 400) return new ProxyError({ status: 400, type: 'invalid_request_error', code: 'invalid_request', message: (original as HTTPError).message })
  }
  return asProxyError(original, requestId)
}

export function errorResponse(error: ProxyError, requestId: string): Response {
  const headers = new Headers({ 'content-type': 'application/json', 'x-request-id': requestId })
  for (const [name, value] of Object.entries(error.headers)) headers.set(name, value)
  return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers })
}
