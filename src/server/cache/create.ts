import { systemClock, type Clock } from '../../gateway/clock.js'
import type { Gateway } from '../../gateway/gateway.js'
import type { Limiter } from '../../limits/limiter.js'
import type { ConfigSnapshot } from '../../core/config.js'
import type { Logger } from '../../telemetry/logger.js'
import { MemoryCacheStore } from './memory-store.js'
import { ResponseCache } from './response-cache.js'
import type { CacheStore } from './store.js'

export interface CreateCacheOptions {
  config: () => ConfigSnapshot
  gateway: Pick<Gateway, 'policyFor'>
  /** its Redis, when limits are shared through one, holds the cache too */
  limits?: Pick<Limiter, 'redis'>
  logger?: Pick<Logger, 'warn' | 'info'>
  clock?: Clock
  /** how long a Redis lookup may take before the request bypasses the cache (default 50 ms) */
  redisTimeoutMs?: number
}

/** The server's response cache: in memory, or in the limits' Redis (shared by the instances on it). */
export async function createResponseCache(opts: CreateCacheOptions): Promise<ResponseCache> {
  const clock = opts.clock ?? systemClock
  const redis = opts.limits?.redis ?? null
  let store: CacheStore
  if (redis) {
    const { RedisCacheStore } = await import('./redis-store.js')
    store = new RedisCacheStore({
      redis: redis.redis,
      prefix: redis.prefix,
      timeoutMs: opts.redisTimeoutMs,
      onStatus: (up, detail) => {
        if (up) opts.logger?.info({ event: 'cache', backend: 'redis' }, 'Redis answers again: the response cache is back on')
        else opts.logger?.warn({ event: 'cache', backend: 'redis', err: detail }, 'Redis did not answer a cache lookup: requests bypass the cache until it does')
      },
    })
  } else {
    store = new MemoryCacheStore(clock)
  }
  return new ResponseCache({ config: opts.config, policyFor: (s, r, c) => opts.gateway.policyFor(s, r, c), store, clock })
}
