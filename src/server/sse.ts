import { ProxyError } from '../core/errors.js'

const encoder = new TextEncoder()
const DONE = encoder.encode('data: [DONE]\n\n')

export interface SseOptions<T> {
  /** sees every chunk before it is written (usage accounting); returns false to drop it */
  onChunk?: (chunk: T) => boolean
  /** called once, right after the first chunk is handed to the client (time to first token) */
  onFirstWrite?: () => void
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
  let wrote = false
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
            if (!wrote) {
              wrote = true
              opts.onFirstWrite?.()
            }
            return
          }
        } catch (err) {
          const error = opts.toError(err)
          controller.enqueue(errorEvent(error))
          controller.close()
          end(error, false)
        }
      },
      async cancel(reason: unknown) {
        // A ProxyError reason is the server ending the stream (endOnAbort at shutdown), not the client leaving.
        if (reason instanceof ProxyError) end(reason, false)
        else end(null, true)
        await iterator.return?.()
      },
    },
    { highWaterMark: 0 },
  )
}

function errorEvent(error: ProxyError): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(error.toJSON())}\n\n`)
}

/**
 * Ends an SSE body early when `signal` aborts (the drain deadline of a shutdown): the client gets
 * `error()` as a last `error` event and a clean end of stream, and the source is cancelled with that
 * error as its reason, so sseStream reports it through onEnd as the stream's error. Until then chunks
 * pass through one at a time, with the same backpressure as the source.
 */
export function endOnAbort(body: ReadableStream<Uint8Array>, signal: AbortSignal, error: () => ProxyError): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let finished = false
  const finish = () => {
    finished = true
    signal.removeEventListener('abort', onAbort)
  }
  const onAbort = () => {
    if (finished) return
    finish()
    const reason = error()
    try {
      controller.enqueue(errorEvent(reason))
      controller.close()
    } catch {
      // the client went away meanwhile
    }
    reader.cancel(reason).catch(() => undefined)
  }
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c
        if (signal.aborted) onAbort()
        else signal.addEventListener('abort', onAbort, { once: true })
      },
      async pull(c) {
        let next: Awaited<ReturnType<typeof reader.read>>
        try {
          next = await reader.read()
        } catch (err) {
          finish()
          throw err
        }
        const { value, done } = next
        if (finished) return
        if (done) {
          finish()
          c.close()
          return
        }
        c.enqueue(value)
      },
      cancel(reason) {
        finish()
        return reader.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
}
