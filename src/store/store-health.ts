/**
 * Whether the store answers, as the server last saw it: the PostgreSQL writer and the LISTEN connection
 * report here, /readyz and /admin/v1/stats read it. A store that is down does not stop requests (the
 * snapshot is in memory, writes are buffered), so this is information, not a verdict.
 */
export class StoreHealth {
  #down = new Map<string, string>()
  #since: number | null = null

  /** `part` (writer, listen) failed with `reason` */
  down(part: string, reason: string): void {
    if (this.#down.size === 0) this.#since = Date.now()
    this.#down.set(part, reason)
  }

  up(part: string): void {
    this.#down.delete(part)
    if (this.#down.size === 0) this.#since = null
  }

  get ok(): boolean {
    return this.#down.size === 0
  }

  /** e.g. "writer: connect ECONNREFUSED 127.0.0.1:5432 (for 12 s)", or null when all is well */
  get detail(): string | null {
    if (this.#down.size === 0) return null
    const seconds = Math.round((Date.now() - (this.#since ?? Date.now())) / 1000)
    return `${[...this.#down].map(([part, reason]) => `${part}: ${reason}`).join('; ')} (for ${seconds} s)`
  }
}
