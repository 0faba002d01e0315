/**
 * The cache shared by every instance on one Redis: the limits' own connection, keys under
 * `<prefix>c:`, each with the policy's TTL. A lookup waits at most `timeoutMs` (50 ms by default); a
 * failure or a Redis that is down makes requests bypass the cache (never fail) and skips Redis for a
 * moment before trying again. Redis's own memory settings bound the total; `max_bytes` bounds one answer.
 */
import type { Redis } from 'ioredis'
import { deadline } from '../../limits/redis.js'
import { answerBytes, type CacheStats, type CacheStore, type CachedAnswer } from './store.js'

export interface RedisCacheOptions {
  redis: Redis
  /** the limits' prefix ('proxy:' by default); entries live under `<prefix>c:` */
  prefix: string
  timeoutMs?: number
  /** after a failure, skip Redis for this long (default 1000 ms) */
  backoffMs?: number
  /** told once per outage, and when Redis answers again */
  onStatus?: (up: boolean, detail?: string) => void
}

/** the most keys `stats` and `clear` walk in one call: admin calls, bounded */
const SCAN_CAP = 1_000_000

export class RedisCacheStore implements CacheStore {
  readonly kind = 'redis' as const
  readonly #redis: Redis
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #backoffMs: number
  readonly #onStatus: RedisCacheOptions['onStatus']
  #suspendedUntil = 0
  #down = false

  constructor(opts: RedisCacheOptions) {
    this.#redis = opts.redis
    this.#prefix = `${opts.prefix}c:`
    this.#timeoutMs = opts.timeoutMs ?? 50
    this.#backoffMs = opts.backoffMs ?? 1000
    this.#onStatus = opts.onStatus
  }

  available(): boolean {
    return this.#redis.status === 'ready' && Date.now() >= this.#suspendedUntil
  }

  async get(key: string): Promise<CachedAnswer | null> {
    let text: string | null
    try {
      text = await deadline(this.#redis.get(this.#prefix + key), this.#timeoutMs)
    } catch (err) {
      this.#failed(err)
      throw err
    }
    this.#up()
    if (text === null) return null
    try {
      return JSON.parse(text) as CachedAnswer
    } catch {
      return null
    }
  }

  set(key: string, answer: CachedAnswer, ttlMs: number, maxBytes: number): void {
    if (!this.available() || answerBytes(answer) > maxBytes) return
    this.#redis.set(this.#prefix + key, JSON.stringify(answer), 'PX', Math.max(1, Math.round(ttlMs))).then(
      () => this.#up(),
      (err: unknown) => this.#failed(err),
    )
  }

  async stats(): Promise<CacheStats> {
    const base = { backend: 'redis' as const, prefix: this.#prefix }
    if (this.#redis.status !== 'ready') return { ...base, entries: 0, bytes: 0, available: false }
    let entries = 0
    let bytes = 0
    await this.#scan(`${this.#prefix}*`, async (keys) => {
      const pipe = this.#redis.pipeline()
      for (const k of keys) pipe.strlen(k)
      const replies = (await pipe.exec()) ?? []
      for (const [err, n] of replies) {
        if (err || !n) continue
        entries++
        bytes += Number(n)
      }
    })
    return { ...base, entries, bytes, available: true }
  }

  async clear(tag?: string): Promise<number> {
    let n = 0
    await this.#scan(`${this.#prefix}${tag === undefined ? '' : `${tag}:`}*`, async (keys) => {
      n += await this.#redis.unlink(...keys)
    })
    return n
  }

  bytes(): number {
    return 0
  }

  async #scan(match: string, each: (keys: string[]) => Promise<void>): Promise<void> {
    let cursor = '0'
    let seen = 0
    do {
      const [next, keys] = await this.#redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await each(keys)
      seen += keys.length
    } while (cursor !== '0' && seen < SCAN_CAP)
  }

  #failed(err: unknown): void {
    this.#suspendedUntil = Date.now() + this.#backoffMs
    if (this.#down) return
    this.#down = true
    this.#onStatus?.(false, err instanceof Error ? err.message : String(err))
  }

  #up(): void {
    if (!this.#down) return
    this.#down = false
    this.#onStatus?.(true)
  }
}
