/**
 * The rate-limit algorithm: a sliding log whose timestamps are rounded *up* to 1/100 of the window.
 *
 * Why not the two-bucket weighted counter: it estimates the previous window's share as
 * `previous * (1 - elapsed/window)`, which assumes the previous window's traffic was spread evenly. When
 * it arrived in a burst at the end of that window, the estimate decays while the burst is still inside
 * the true sliding window, and up to nearly 2x the limit gets through in some span of one window length.
 * A limit must hold for every span, so that approximation is out.
 *
 * Why not an exact sliding log: it keeps one entry per admitted request, so a token limit on a busy
 * gateway (or any 1-day window) holds millions of entries per key.
 *
 * This log merges entries that fall in the same slot (window/100) and stamps them with the slot's *end*.
 * An entry therefore counts for at least a full window after the request arrived, never less: in every
 * span of one window length the admitted total stays within the limit. The only cost is that capacity
 * comes back up to 1% of the window late (10 ms for a 1 s window, 36 s for 1 h). Memory is at most 102
 * entries per key, and each request costs O(1) amortized (an entry is appended once and evicted once).
 *
 * The Redis backend runs the same arithmetic in Lua (redis-scripts.ts), so both backends agree to the slot.
 */

export const SLOTS_PER_WINDOW = 100

/** The slot length of a window, in ms. Windows are whole seconds, so this is a whole number of ms. */
export const slotMs = (windowMs: number): number => windowMs / SLOTS_PER_WINDOW

/** The slot a request at `now` goes into: its time rounded up. */
export const slotOf = (now: number, windowMs: number): number => Math.ceil(now / slotMs(windowMs))

/** Slots at or before this one have left the window at `now`. */
export const expiredThrough = (now: number, windowMs: number): number => Math.floor((now - windowMs) / slotMs(windowMs))

export class SlidingLog {
  readonly windowMs: number
  readonly #res: number
  #slots: number[] = []
  #weights: number[] = []
  #head = 0
  #sum = 0

  constructor(windowMs: number) {
    this.windowMs = windowMs
    this.#res = slotMs(windowMs)
  }

  /** What the window holds after eviction at `now`. */
  used(now: number): number {
    this.#evict(now)
    return this.#sum
  }

  add(now: number, cost: number): void {
    if (cost <= 0) return
    const slot = Math.ceil(now / this.#res)
    const last = this.#slots.length - 1
    if (last >= this.#head && this.#slots[last] === slot) this.#weights[last]! += cost
    else {
      this.#slots.push(slot)
      this.#weights.push(cost)
    }
    this.#sum += cost
  }

  /** ms until `cost` more fits under `limit`; Infinity when it never can. Call after `used(now)`. */
  retryAfter(now: number, cost: number, limit: number): number {
    if (cost > limit) return Infinity
    const need = this.#sum + cost - limit
    if (need <= 0) return 0
    let freed = 0
    for (let i = this.#head; i < this.#slots.length; i++) {
      freed += this.#weights[i]!
      if (freed >= need) return this.#slots[i]! * this.#res + this.windowMs - now
    }
    return this.windowMs
  }

  /** ms until the window is back to its full limit (the newest entry leaves). */
  resetMs(now: number): number {
    const last = this.#slots.length - 1
    return last >= this.#head ? Math.max(0, this.#slots[last]! * this.#res + this.windowMs - now) : 0
  }

  /**
   * Corrects the entry a request made at `at` with `delta` (actual minus estimate). If that entry already
   * left the window, a positive delta is counted now and a negative one is dropped.
   */
  adjust(at: number, delta: number, now: number): void {
    this.#evict(now)
    const slot = Math.ceil(at / this.#res)
    const i = this.#find(slot)
    if (i < 0) {
      if (delta > 0) this.add(now, delta)
      return
    }
    const w = Math.max(0, this.#weights[i]! + delta)
    this.#sum += w - this.#weights[i]!
    this.#weights[i] = w
  }

  /** true when nothing is left in the window: the log can be dropped. */
  idle(now: number): boolean {
    return this.used(now) === 0
  }

  #evict(now: number): void {
    const cutoff = Math.floor((now - this.windowMs) / this.#res)
    const slots = this.#slots
    let head = this.#head
    while (head < slots.length && slots[head]! <= cutoff) {
      this.#sum -= this.#weights[head]!
      head++
    }
    if (head === slots.length) {
      slots.length = 0
      this.#weights.length = 0
      this.#head = 0
      this.#sum = 0
      return
    }
    // Compact now and then, so the arrays stay near their live size (at most 102 slots).
    if (head > 64) {
      slots.splice(0, head)
      this.#weights.splice(0, head)
      head = 0
    }
    this.#head = head
  }

  #find(slot: number): number {
    let lo = this.#head
    let hi = this.#slots.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const s = this.#slots[mid]!
      if (s === slot) return mid
      if (s < slot) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }
}
