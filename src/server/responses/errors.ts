/**
 * Errors in the Responses API's shapes. Before the first byte, an error is OpenAI's usual body
 * (`ProxyError.toJSON()`: `{error:{message,type,param,code}}`), which the SDKs raise. After it, the stream
 * ends with `response.failed`, whose Response carries `error: {code, message}` with a code from the
 * Responses API's own list: clients decide on it (Codex retries server_error and rate_limit_exceeded, and
 * gives up on invalid_prompt and context_length_exceeded).
 */
import type { ProxyError } from '../../core/errors.js'
import { outputText } from './output.js'
import { event, type ResponseEvent, type ResponseStreamState } from './stream.js'

/** Codes clients of the Responses API act on, kept as they are. */
const RESPONSE_CODES = new Set(['server_error', 'rate_limit_exceeded', 'invalid_prompt', 'context_length_exceeded', 'insufficient_quota'])

export function responseErrorCode(err: ProxyError): string {
  if (err.code && RESPONSE_CODES.has(err.code)) return err.code
  if (err.status === 429) return 'rate_limit_exceeded'
  if (err.status >= 400 && err.status < 500 && err.type === 'invalid_request_error') return 'invalid_prompt'
  return 'server_error'
}

/**
 * The last event of a stream that failed after its first byte: the Response so far, status failed.
 * Items that were still being written are marked incomplete.
 */
export function responseFailedEvent(err: ProxyError, state: ResponseStreamState): ResponseEvent {
  const response = state.response
  response.status = 'failed'
  response.error = { code: responseErrorCode(err), message: err.message }
  response.completed_at = null
  for (const item of response.output) if ('status' in item && item.status === 'in_progress') item.status = 'incomplete'
  response.output_text = outputText(response.output)
  return event(state, 'response.failed', { response })
}
