/**
 * The in-memory cache of one instance: an LRU bounded in bytes (lru-cache) per `max_bytes` in use, so a
 * policy's bound holds for the answers cached under it. Expiry follows the injected clock.
 */
import { LRUCache } from 'lru-cache'
import type { Clock } from '../../gateway/clock.js'
import { answerBytes, type CacheStats, type CacheStore, type CachedAnswer } from './store.js'

export class MemoryCacheStore implements CacheStore {
  readonly kind = 'memory' as const
  readonly #clock: Clock
  readonly #lrus = new Map<number, LRUCache<string, CachedAnswer>>()

  constructor(clock: Clock) {
    this.#clock = clock
  }

  get(key: string, maxBytes: number): Promise<CachedAnswer | null> {
    return Promise.resolve(this.#lrus.get(maxBytes)?.get(key) ?? null)
  }

  set(key: string, answer: CachedAnswer, ttlMs: number, maxBytes: number): void {
    const size = answerBytes(answer)
    if (size > maxBytes) return
    this.#lru(maxBytes).set(key, answer, { ttl: ttlMs, size })
  }

  available(): boolean {
    return true
  }

  async stats(): Promise<CacheStats> {
    let entries = 0
    for (const lru of this.#lrus.values()) {
      lru.purgeStale()
      entries += lru.size
    }
    return { backend: 'memory', entries, bytes: this.bytes(), maxBytes: [...this.#lrus.keys()].sort((a, b) => a - b), available: true }
  }

  async clear(tag?: string): Promise<number> {
    let n = 0
    for (const lru of this.#lrus.values()) {
      if (tag === undefined) {
        n += lru.size
        lru.clear()
        continue
      }
      for (const key of [...lru.keys()]) if (key.startsWith(`${tag}:`) && lru.delete(key)) n++
    }
    return n
  }

  bytes(): number {
    let n = 0
    for (const lru of this.#lrus.values()) n += lru.calculatedSize
    return n
  }

  #lru(maxBytes: number): LRUCache<string, CachedAnswer> {
    let lru = this.#lrus.get(maxBytes)
    if (!lru) {
      // ttlResolution 0: read the clock on every check, so an injected clock is followed exactly
      lru = new LRUCache<string, CachedAnswer>({ maxSize: maxBytes, ttlResolution: 0, perf: { now: () => this.#clock.now() }, allowStale: false })
      this.#lrus.set(maxBytes, lru)
    }
    return lru
  }
}
