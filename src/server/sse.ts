import { ProxyError } from '../core/errors.js'

const encoder = new TextEncoder()
const DONE = encoder.encode('data: [DONE]\n\n')

export interface SseOptions<T> {
  /** sees every chunk before it is written (usage accounting); returns false to drop it */
  onChunk?: (chunk: T) => boolean
  /** called once, when the stream ends for any reason */
  onEnd?: (outcome: { error: ProxyError | null; cancelled: boolean }) => void
  toError: (err: unknown) => ProxyError
}

/**
 * Writes chunk objects as OpenAI-style SSE, pulled one at a time so a slow client slows the upstream
 * read instead of growing a buffer. An upstream failure after the first byte becomes an `error` event
 * (which the OpenAI SDKs raise) and ends the stream: never a silent truncation.
 */
export function sseStream<T>(source: AsyncIterable<T>, opts: SseOptions<T>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]()
  let ended = false
  const end = (error: ProxyError | null, cancelled: boolean) => {
    if (ended) return
    ended = true
    opts.onEnd?.({ error, cancelled })
  }
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const { value, done } = await iterator.next()
            if (done) {
              controller.enqueue(DONE)
              controller.close()
              end(null, false)
              return
            }
            if (opts.onChunk && !opts.onChunk(value)) continue
            controller.enqueue(encoder.encode(`data: ${JSON.stringify(value)}\n\n`))
            return
          }
        } catch (err) {
          const error = opts.toError(err)
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(error.toJSON())}\n\n`))
          controller.close()
          end(error, false)
        }
      },
      async cancel() {
        end(null, true)
        await iterator.return?.()
      },
    },
    { highWaterMark: 0 },
  )
}
