/**
 * What the gateway needs to know of the client's connection: whether it went away, and a callback
 * when it does. AbortSignal has this shape (tests and other callers pass one); the server's hot path
 * passes a ClientLink instead, because an AbortSignal is an EventTarget that costs a few microseconds to
 * make and to listen on, once per request, for an event that almost never comes.
 */
export interface ClientSignal {
  readonly aborted: boolean
  readonly reason?: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

export class ClientLink implements ClientSignal {
  aborted = false
  reason: unknown = undefined
  #listeners: Array<() => void> = []

  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners.push(listener)
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.#listeners.indexOf(listener)
    if (i !== -1) this.#listeners.splice(i, 1)
  }

  /** listeners run once each, in the order they were added */
  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const listeners = this.#listeners
    this.#listeners = []
    for (const listener of listeners) listener()
  }
}
