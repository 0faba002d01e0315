/**
 * The body of an upstream answer as an async iterable of byte chunks, fed by an undici dispatch
 * handler. It replaces undici's Readable body on the streaming path: a Readable and its async iterator
 * cost a few microseconds per chunk, and leaving its iterator early (at `[DONE]`) destroyed it with an
 * AbortError, stack trace included, once per stream.
 *
 * Backpressure: past HIGH_WATER unread chunks the upstream read pauses, and resumes once the reader
 * caught up. Releasing the body before its end (the reader stopped) reads and drops the rest up to
 * DRAIN_LIMIT bytes, so the keep-alive connection goes back to the pool; more than that, or a
 * `destroy()`, aborts the exchange. A client that went away aborts it through the call's signal.
 */
import type { Dispatcher } from 'undici'

const HIGH_WATER = 16
const DRAIN_LIMIT = 64 * 1024

type Waiter = { resolve: (r: IteratorResult<Buffer>) => void; reject: (err: unknown) => void }

export class UpstreamBody implements AsyncIterable<Buffer> {
  #queue: Buffer[] = []
  #head = 0
  #done = false
  #failed = false
  #error: unknown = undefined
  #waiting: Waiter | null = null
  #controller: Dispatcher.DispatchController | null = null
  #paused = false
  #draining = false
  #drained = 0
  /** true once the reader has seen the end, as with a Readable */
  readableEnded = false

  // ---- the dispatch handler's side ----

  attach(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
  }

  push(chunk: Buffer): void {
    if (this.#draining) {
      this.#drained += chunk.length
      if (this.#drained > DRAIN_LIMIT) this.destroy()
      return
    }
    const waiter = this.#waiting
    if (waiter) {
      this.#waiting = null
      waiter.resolve({ value: chunk, done: false })
      return
    }
    this.#queue.push(chunk)
    if (!this.#paused && this.#queue.length - this.#head >= HIGH_WATER) {
      this.#paused = true
      this.#controller?.pause()
    }
  }

  end(): void {
    if (this.#done) return
    this.#done = true
    const waiter = this.#waiting
    if (waiter) {
      this.#waiting = null
      this.readableEnded = true
      waiter.resolve({ value: undefined, done: true })
    }
  }

  fail(err: unknown): void {
    if (this.#done) return
    this.#done = true
    this.#failed = true
    this.#error = err
    const waiter = this.#waiting
    if (waiter) {
      this.#waiting = null
      waiter.reject(err)
    }
  }

  // ---- the reader's side ----

  next(): Promise<IteratorResult<Buffer>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++]!
      if (this.#head === this.#queue.length) {
        this.#queue.length = 0
        this.#head = 0
      }
      if (this.#paused && this.#queue.length - this.#head < HIGH_WATER / 2) {
        this.#paused = false
        this.#controller?.resume()
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.#failed) return Promise.reject(this.#error)
    if (this.#done) {
      this.readableEnded = true
      return Promise.resolve({ value: undefined, done: true })
    }
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  /** The reader is done with it: what is left is read and dropped (bounded), or nothing when it ended. */
  release(): void {
    if (this.#done || this.#draining) return
    this.#draining = true
    this.#queue.length = 0
    this.#head = 0
    if (this.#paused) {
      this.#paused = false
      this.#controller?.resume()
    }
  }

  /** Aborts the exchange if it is still running. */
  destroy(): void {
    if (this.#done) return
    this.#queue.length = 0
    this.#head = 0
    this.#controller?.abort(new DOMException('The upstream answer was dropped before its end.', 'AbortError'))
  }

  /** Reads the rest as UTF-8 text. */
  async text(): Promise<string> {
    const chunks: Buffer[] = []
    for (;;) {
      const { value, done } = await this.next()
      if (done) return Buffer.concat(chunks).toString('utf8')
      chunks.push(value)
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: () => this.next(),
      return: () => {
        this.release()
        return Promise.resolve({ value: undefined, done: true })
      },
    }
  }
}
