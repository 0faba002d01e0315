/**
 * Small shared state with expiry, kept in the same backend as the limits: in memory for one instance,
 * in Redis when instances share one. Meant for state that must agree across instances, such as a
 * circuit breaker's open-until time or an upstream key's cooldown (src/gateway/shared-health.ts).
 * Keys are namespaced by the caller ('circuit:p:3'); values are strings; every write carries a TTL so
 * nothing outlives its use.
 *
 * Defined in core because two layers that must not depend on each other meet here: src/limits
 * implements it (memory.ts, redis.ts, the limiter's fail-open wrapper), src/gateway uses it.
 */
export interface SharedState {
  get(key: string): Promise<string | null>
  /** several keys in one round trip (Redis MGET); null for a missing or expired key */
  getMany(keys: readonly string[]): Promise<Array<string | null>>
  set(key: string, value: string, ttlMs: number): Promise<void>
  /** adds `by` (default 1) and returns the new value; a new counter starts at 0 and lives `ttlMs` */
  incr(key: string, ttlMs: number, by?: number): Promise<number>
  del(key: string): Promise<void>
}
