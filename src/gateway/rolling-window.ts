/**
 * Success and failure counts over the last N seconds, in one-second buckets (a ring, so recording and
 * reading cost the same however busy the key is).
 */
export const MAX_WINDOW_S = 600

export interface Counts {
  success: number
  failure: number
}

export class RollingWindow {
  readonly #seconds: Int32Array
  readonly #success: Uint32Array
  readonly #failure: Uint32Array

  constructor(readonly capacityS = MAX_WINDOW_S) {
    this.#seconds = new Int32Array(capacityS).fill(-1)
    this.#success = new Uint32Array(capacityS)
    this.#failure = new Uint32Array(capacityS)
  }

  record(now: number, ok: boolean): void {
    const sec = Math.floor(now / 1000)
    const i = sec % this.capacityS
    if (this.#seconds[i] !== sec) {
      this.#seconds[i] = sec
      this.#success[i] = 0
      this.#failure[i] = 0
    }
    if (ok) this.#success[i]!++
    else this.#failure[i]!++
  }

  /** counts over the last `windowS` seconds, the current one included */
  counts(now: number, windowS: number): Counts {
    const sec = Math.floor(now / 1000)
    const span = Math.min(Math.max(1, windowS), this.capacityS)
    let success = 0
    let failure = 0
    for (let s = sec - span + 1; s <= sec; s++) {
      const i = ((s % this.capacityS) + this.capacityS) % this.capacityS
      if (this.#seconds[i] === s) {
        success += this.#success[i]!
        failure += this.#failure[i]!
      }
    }
    return { success, failure }
  }

  clear(): void {
    this.#seconds.fill(-1)
  }
}
