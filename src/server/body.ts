import type { IncomingMessage } from 'node:http'
import type { H3Event } from 'h3'
import { bodyTooLarge, invalidRequest, jsonTooDeep } from '../core/errors.js'
import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth } from './json-depth.js'

/**
 * Reads and parses a JSON body within the size and nesting limits. A declared Content-Length over the
 * limit is refused before reading a byte; a chunked body is cut off by the reader's own limit.
 */
export async function readJsonBody(event: H3Event, limitBytes: number, maxDepth = DEFAULT_MAX_JSON_DEPTH): Promise<unknown> {
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
  return parseJsonBody(text, maxDepth)
}

/** The raw bytes of a node:http request's body, collected without a stream adapter in between. */
export function readNodeBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > limitBytes) return Promise.reject(bodyTooLarge(limitBytes))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limitBytes) {
        cleanup()
        // The rest is not read: the answer closes the connection (see the 413 in the caller).
        req.pause()
        reject(bodyTooLarge(limitBytes))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = () => {
      cleanup()
      reject(invalidRequest('The request body could not be read.', null, 'invalid_body'))
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onError)
  })
}

/** Parses a body read whole (and within its size limit); nesting past `maxDepth` is refused before JSON.parse sees it. */
export function parseJsonBody(text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): unknown {
  if (!text.trim()) throw invalidRequest('The request body is empty; send a JSON object.', null, 'invalid_body')
  if (exceedsJsonDepth(text, maxDepth)) throw jsonTooDeep(maxDepth)
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
