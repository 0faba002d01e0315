import type { ServerResponse } from 'node:http'
import type { ProxyError } from '../core/errors.js'
import type { Shape } from './shape.js'

export interface SseOptions<T> {
  /** how the client's API writes events, the end of a stream and an error */
  shape: Shape
  /** sees every chunk before it is written (usage accounting); returns false to drop it */
  onChunk?: (chunk: T) => boolean
  /** called once, right after the first chunk is handed to the client (time to first token) */
  onFirstWrite?: () => void
  /** called once, when the stream ends for any reason */
  onEnd?: (outcome: { error: ProxyError | null; cancelled: boolean }) => void
  toError: (err: unknown) => ProxyError
  /** aborted at a shutdown's drain deadline: the stream ends with `shutdownError()` as a last error event */
  shutdown?: AbortSignal
  shutdownError?: () => ProxyError
}

/**
 * Writes event objects to the response as SSE in the client API's shape, each as soon as it arrives. The next chunk
 * is pulled only once the socket took the last one, so a slow client slows the upstream read instead of
 * growing a buffer. An upstream failure after the first byte becomes an `error` event (which the OpenAI
 * SDKs raise) and ends the stream: never a silent truncation. Written straight to node:http, with no web
 * stream in between: that layer cost about a millisecond of the first byte.
 */
export async function writeSse<T extends object>(source: AsyncIterable<T>, res: ServerResponse, opts: SseOptions<T>): Promise<void> {
  const { shape } = opts
  const iterator = source[Symbol.asyncIterator]()
  let last: T | null = null
  let over = false
  let wrote = false
  const end = (error: ProxyError | null, cancelled: boolean) => {
    if (over) return
    over = true
    res.off('close', onClose)
    opts.shutdown?.removeEventListener('abort', onShutdown)
    opts.onEnd?.({ error, cancelled })
  }
  const stop = () => void iterator.return?.()?.catch?.(() => undefined)
  // The client went away: the upstream read is dropped (the caller's signal has aborted it already).
  const onClose = () => {
    if (over) return
    end(null, true)
    stop()
  }
  const onShutdown = () => {
    if (over) return
    const error = opts.shutdownError!()
    res.end(shape.streamError(error, last))
    end(error, false)
    stop()
  }
  res.on('close', onClose)
  if (opts.shutdown && opts.shutdownError) {
    if (opts.shutdown.aborted) return onShutdown()
    opts.shutdown.addEventListener('abort', onShutdown, { once: true })
  }
  try {
    for (;;) {
      const { value, done } = await iterator.next()
      if (over) return
      if (done) {
        res.end(shape.done)
        end(null, false)
        return
      }
      if (opts.onChunk && !opts.onChunk(value)) continue
      last = value
      const flowing = res.write(shape.event(value))
      if (!wrote) {
        wrote = true
        opts.onFirstWrite?.()
      }
      if (!flowing) await drained(res)
      if (over) return
    }
  } catch (err) {
    if (over) return
    const error = opts.toError(err)
    res.end(shape.streamError(error, last))
    end(error, false)
  }
}

/** Resolves when the socket wants more, or when the response is gone (the close handler ends the stream). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}
