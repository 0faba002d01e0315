/**
 * ProxyError -> Anthropic's error shape, `{"type":"error","error":{"type":…,"message":…}}`, with the status
 * Anthropic uses, so the Anthropic SDKs raise the class a client expects and retry what is worth retrying:
 *
 * | proxy status (code)                     | answer | type                   | SDK error class        |
 * |-----------------------------------------|--------|------------------------|------------------------|
 * | 400, 422 and any other 4xx not below    | 400    | invalid_request_error  | BadRequestError        |
 * | 401                                     | 401    | authentication_error   | AuthenticationError    |
 * | 403                                     | 403    | permission_error       | PermissionDeniedError  |
 * | 404                                     | 404    | not_found_error        | NotFoundError          |
 * | 405, 499                                | same   | invalid_request_error  | APIError / ClientClosedRequestError |
 * | 413                                     | 413    | request_too_large      | ContentTooLargeError   |
 * | 429                                     | 429    | rate_limit_error       | RateLimitError         |
 * | 500, other 5xx                          | same   | api_error              | InternalServerError    |
 * | 502 (upstream failed)                   | 502    | api_error              | InternalServerError    |
 * | 502 upstream_overloaded (upstream 529)  | 529    | overloaded_error       | OverloadedError        |
 * | 503 (no usable upstream, shutting down) | 529    | overloaded_error       | OverloadedError        |
 * | 504 (upstream or budget timeout)        | 504    | timeout_error          | GatewayTimeoutError    |
 *
 * 503 becomes 529 because that is how Anthropic says "no capacity right now, try again", and clients such
 * as Claude Code treat it as such. A 502 keeps its status (the SDK treats it like a 500 and retries it).
 * Headers are kept (retry-after above all). The SDKs retry 429 and 5xx unless `x-should-retry: false`
 * says otherwise; that header is set where a retry cannot help: an exhausted quota (it refills at the
 * period's end), no upstream key configured, an upstream that rejected the proxy's keys or does not know
 * the model. The proxy's own code goes along as `error.details.error_code`, which the SDK exposes as
 * `errorCode`.
 */
import type { ProxyError } from '../../core/errors.js'

export type MessagesErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error'

export interface MessagesErrorObject {
  type: MessagesErrorType
  message: string
  details?: { error_code: string }
}

export interface MessagesErrorBody {
  type: 'error'
  error: MessagesErrorObject
  request_id?: string
}

/** Codes of errors that the same request will meet again at once. */
const NO_RETRY = new Set(['insufficient_quota', 'no_upstream_keys', 'upstream_auth_failed', 'upstream_not_found'])

function statusAndType(err: ProxyError): [number, MessagesErrorType] {
  const status = err.status
  switch (status) {
    case 401:
      return [401, 'authentication_error']
    case 403:
      return [403, 'permission_error']
    case 404:
      return [404, 'not_found_error']
    case 413:
      return [413, 'request_too_large']
    case 429:
      return [429, 'rate_limit_error']
    case 405:
    case 499:
      return [status, 'invalid_request_error']
    case 503:
      return [529, 'overloaded_error']
    case 504:
      return [504, 'timeout_error']
  }
  if (err.code === 'upstream_overloaded') return [529, 'overloaded_error']
  if (status >= 500) return [status, 'api_error']
  return [400, 'invalid_request_error']
}

function errorObject(err: ProxyError, type: MessagesErrorType): MessagesErrorObject {
  return { type, message: err.message, ...(err.code ? { details: { error_code: err.code } } : {}) }
}

/** The HTTP answer for an error on /v1/messages or /v1/messages/count_tokens. */
export function toMessagesError(err: ProxyError, requestId?: string): { status: number; body: MessagesErrorBody; headers: Record<string, string> } {
  const [status, type] = statusAndType(err)
  const headers = { ...err.headers }
  if (err.code && NO_RETRY.has(err.code)) headers['x-should-retry'] = 'false'
  const body: MessagesErrorBody = { type: 'error', error: errorObject(err, type), ...(requestId ? { request_id: requestId } : {}) }
  return { status, body, headers }
}

/** The `error` event that ends a stream which already started. */
export function messagesErrorEvent(err: ProxyError): { type: 'error'; error: MessagesErrorObject } {
  return { type: 'error', error: errorObject(err, statusAndType(err)[1]) }
}
