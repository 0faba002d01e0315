import type { H3Event } from 'h3'
import { bodyTooLarge, invalidRequest } from '../core/errors.js'

/**
 * Reads and parses a JSON body within the size limit. A declared Content-Length over the limit is
 * refused before reading a byte; a chunked body is cut off by the reader's own limit.
 */
export async function readJsonBody(event: H3Event, limitBytes: number): Promise<unknown> {
  const declared = Number(event.req.headers.get('content-length') ?? NaN)
  if (declared > limitBytes) throw bodyTooLarge(limitBytes)
  let text: string
  try {
    text = await event.req.text()
  } catch (err) {
    if ((err as { status?: number })?.status === 413) throw bodyTooLarge(limitBytes)
    throw invalidRequest('The request body could not be read.', null, 'invalid_body')
  }
  if (text.length > limitBytes) throw bodyTooLarge(limitBytes)
  if (!text.trim()) throw invalidRequest('The request body is empty; send a JSON object.', null, 'invalid_body')
  try {
    return JSON.parse(text)
  } catch {
    throw invalidRequest(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
      null,
      'invalid_json',
    )
  }
}
