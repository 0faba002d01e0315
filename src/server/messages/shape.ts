/**
 * How Anthropic's Messages API writes answers, streams and errors, and its paths: known to the server
 * at start, without the endpoints' code, which the first request to one of them loads (app.ts).
 */
import type { Shape } from '../shape.js'
import { namedEvent } from '../sse-format.js'
import { messagesErrorEvent, toMessagesError } from './errors.js'

export const MESSAGES_PATH = '/v1/messages'
export const COUNT_TOKENS_PATH = '/v1/messages/count_tokens'

export const messagesShape: Shape = {
  event: namedEvent,
  done: '',
  error: (error) => {
    const { status, body, headers } = toMessagesError(error)
    return { status, body: JSON.stringify(body), headers }
  },
  streamError: (error) => namedEvent(messagesErrorEvent(error)),
}
