/**
 * How OpenAI's Responses API writes answers, streams and errors before a stream has begun, and its path:
 * known to the server at start, without the endpoint's code, which its first request loads (app.ts).
 */
import { openAIShape } from '../chat/shape.js'
import type { Shape } from '../shape.js'
import { namedEvent } from '../sse-format.js'

export const RESPONSES_PATH = '/v1/responses'

export const responsesShape: Shape = {
  event: namedEvent,
  done: '',
  // OpenAI's usual error body, which the SDKs raise
  error: openAIShape.error,
  // a stream the meter could not follow (none in practice): OpenAI's error event
  streamError: (error) => namedEvent({ type: 'error', sequence_number: 0, code: error.code, message: error.message, param: error.param }),
}
