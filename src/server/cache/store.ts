import type { RecordUsage } from '../lifecycle.js'

/** One cached answer, as it went out to the client that caused it. */
export interface CachedAnswer {
  /** 'json': the body; 'sse': the stream's whole text, every event as it was written and the end marker */
  kind: 'json' | 'sse'
  body: string
  provider: string
  upstreamModel: string
  /** the usage the answer cost when it was made: what a hit saves */
  usage: RecordUsage | null
  /** the model name the client asked for */
  model: string
  /** epoch ms */
  storedAt: number
}

export interface CacheStats {
  backend: 'memory' | 'redis'
  entries: number
  bytes: number
  /** memory: the bound of each LRU (one per max_bytes in use) */
  maxBytes?: number[]
  /** redis: the key prefix; a Redis that is unreachable is reported here and as `available: false` */
  prefix?: string
  available: boolean
}

/** Where answers are kept. Keys are `<model tag>:<request hash>` (key.ts), so they can be cleared by model. */
export interface CacheStore {
  readonly kind: 'memory' | 'redis'
  /** null when absent or expired; rejects when the backend cannot answer now (the request then bypasses the cache) */
  get(key: string, maxBytes: number): Promise<CachedAnswer | null>
  /** stores for `ttlMs`, in the background; never fails a request */
  set(key: string, answer: CachedAnswer, ttlMs: number, maxBytes: number): void
  /** whether a lookup can be tried at all (false while Redis is down: the request bypasses at once) */
  available(): boolean
  stats(): Promise<CacheStats>
  /** removes every entry, or those of one model tag; resolves to how many */
  clear(tag?: string): Promise<number>
  /** bytes held in this process (the memory LRUs; 0 for Redis) */
  bytes(): number
}

/** The size an answer is counted at: its text plus the few fields around it. */
export function answerBytes(answer: CachedAnswer): number {
  return Buffer.byteLength(answer.body) + answer.model.length + answer.provider.length + answer.upstreamModel.length + 128
}
