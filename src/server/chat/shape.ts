/** How OpenAI's API (chat completions, completions, embeddings) writes answers, streams and errors. */
import type { ProxyError } from '../../core/errors.js'
import type { Shape } from '../shape.js'
import { dataEvent } from '../sse-format.js'

export const openAIShape: Shape = {
  event: dataEvent,
  done: 'data: [DONE]\n\n',
  error: (error: ProxyError) => ({ status: error.status, body: JSON.stringify(error.toJSON()) }),
  // an `error` event, which the OpenAI SDKs raise
  streamError: (error: ProxyError) => `data: ${JSON.stringify(error.toJSON())}\n\n`,
}
