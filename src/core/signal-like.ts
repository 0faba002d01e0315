/**
 * The part of AbortSignal the gateway and the upstream calls use: whether it aborted, why, and a
 * callback when it does. An AbortSignal fits (tests and other callers pass one). The hot path makes a
 * LightAbort instead, for the client's connection and for each upstream attempt: an AbortSignal is an
 * EventTarget that costs a few microseconds to make and to listen on, twice per request, for an event
 * that almost never comes.
 */
export interface SignalLike {
  readonly aborted: boolean
  readonly reason?: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

export class LightAbort implements SignalLike {
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

/**
 * A real AbortSignal that follows `source`, for APIs that insist on one (node:timers/promises). Made
 * only where such an API is used off the hot path (backoff sleeps, the mock's delays); `unlink()` after.
 */
export function abortSignalFor(source: SignalLike): { signal: AbortSignal; unlink(): void } {
  const bridge = new AbortController()
  const onAbort = () => bridge.abort(source.reason)
  if (source.aborted) onAbort()
  else source.addEventListener('abort', onAbort, { once: true })
  return { signal: bridge.signal, unlink: () => source.removeEventListener('abort', onAbort) }
}
