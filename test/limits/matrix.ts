/**
 * Runs a limits suite against both backends, h3-style: `memory` with a fake clock, and `redis` against a
 * real server (127.0.0.1:6379, or PROXY_TEST_REDIS_URL; .ci/run starts one) with real time. Every Redis
 * suite gets its own key prefix and deletes its keys afterwards.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe } from 'vitest'
import { MemoryBackend } from '../../src/limits/memory.js'
import { RedisBackend } from '../../src/limits/redis.js'
import type { LimitBackend, SharedState } from '../../src/limits/types.js'

export const TEST_REDIS_URL = process.env.PROXY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export type BackendKind = 'memory' | 'redis'

export interface MatrixContext {
  kind: BackendKind
  /** a fresh backend (memory) or one more connection under this suite's prefix (redis), connected */
  backend(): Promise<LimitBackend & SharedState>
  /** the backend's clock: fake for memory, wall time for redis */
  now(): number
  /** lets time pass: instantly for memory, by sleeping for redis */
  advance(ms: number): Promise<void>
  /** this suite's Redis key prefix (redis only) */
  prefix: string
  /** flushes queued settlements (redis batches them) */
  settled(backend: LimitBackend): Promise<void>
}

export const uniquePrefix = (label: string) => `proxy-test:${label}:${process.pid}:${randomBytes(4).toString('hex')}:`

/** Fails clearly when no Redis answers, instead of timing out somewhere inside a test. */
export async function assertRedis(url = TEST_REDIS_URL): Promise<void> {
  const probe = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null })
  probe.on('error', () => undefined)
  try {
    await probe.connect()
    await probe.ping()
  } catch (err) {
    throw new Error(`Redis is not reachable at ${url} (${(err as Error).message}). Start one (.ci/run does: redis-server --port 6379 --save '' --appendonly no) or set PROXY_TEST_REDIS_URL.`)
  } finally {
    probe.disconnect()
  }
}

/** Deletes every key under a prefix. */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 })
  redis.on('error', () => undefined)
  let deleted = 0
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length) deleted += await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
  return deleted
}

export function describeMatrix(name: string, suite: (ctx: MatrixContext) => void): void {
  for (const kind of ['memory', 'redis'] as const) {
    describe(`${name} [${kind}]`, () => {
      let fake = Date.UTC(2030, 0, 15, 12, 0, 0)
      const prefix = uniquePrefix(name.replace(/\W+/g, '-').slice(0, 24))
      const opened: Array<LimitBackend> = []
      if (kind === 'redis') {
        beforeAll(async () => {
          await assertRedis()
        })
      }
      afterAll(async () => {
        for (const b of opened) await b.close()
        if (kind === 'redis') await deleteKeys(TEST_REDIS_URL, prefix)
      })
      const ctx: MatrixContext = {
        kind,
        prefix,
        async backend() {
          if (kind === 'memory') {
            const b = new MemoryBackend({ clock: () => fake, sweepMs: 0 })
            opened.push(b)
            return b
          }
          const b = new RedisBackend({ url: TEST_REDIS_URL, prefix, commandTimeoutMs: 2000 })
          opened.push(b)
          if (!(await b.waitReady(3000))) throw new Error(`could not connect to ${TEST_REDIS_URL}`)
          return b
        },
        now: () => (kind === 'memory' ? fake : Date.now()),
        async advance(ms) {
          if (kind === 'memory') fake += ms
          else await new Promise((r) => setTimeout(r, ms))
        },
        async settled(backend) {
          if (backend instanceof RedisBackend) await backend.flush()
        },
      }
      suite(ctx)
    })
  }
}
