import { setTimeout as delay } from 'node:timers/promises'

/** Time as the gateway sees it; injected so tests can record waits instead of sleeping through them. */
export interface Clock {
  now(): number
  /** rejects when the signal aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => (ms <= 0 ? Promise.resolve() : delay(ms, undefined, { signal })),
}
