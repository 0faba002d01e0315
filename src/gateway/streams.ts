/** Stream plumbing for the gateway: hold a stream until its first chunk, and hear how it ends. */

/**
 * Waits for a stream's first chunk before handing it on, so an upstream that accepts the request and
 * then fails before producing anything is still a retryable failure rather than a broken client stream.
 */
export async function primeStream<T>(stream: AsyncIterable<T>): Promise<AsyncIterable<T>> {
  const iterator = stream[Symbol.asyncIterator]()
  const first = await iterator.next()
  return {
    [Symbol.asyncIterator]() {
      let primed: IteratorResult<T> | null = first
      return {
        next() {
          if (primed) {
            const result = primed
            primed = null
            return Promise.resolve(result)
          }
          return iterator.next()
        },
        return(value?: unknown) {
          return iterator.return ? iterator.return(value) : Promise.resolve({ done: true as const, value: undefined as T })
        },
      }
    },
  }
}

export interface StreamHooks {
  /** the upstream failed mid-stream (the error still reaches the consumer) */
  failed(err: unknown): void
  /** the stream is over: done, failed, or abandoned by the consumer; called once */
  ended(): void
}

/** Passes a stream through unchanged, telling the hooks how it ends. */
export function watchStream<C>(stream: AsyncIterable<C>, hooks: StreamHooks): AsyncIterable<C> {
  let over = false
  const end = () => {
    if (over) return
    over = true
    hooks.ended()
  }
  return {
    [Symbol.asyncIterator]() {
      const iterator = stream[Symbol.asyncIterator]()
      return {
        async next() {
          try {
            const result = await iterator.next()
            if (result.done) end()
            return result
          } catch (err) {
            if (!over) hooks.failed(err)
            end()
            throw err
          }
        },
        async return(value?: unknown) {
          end()
          return iterator.return ? iterator.return(value) : { done: true as const, value: undefined as C }
        },
      }
    },
  }
}
