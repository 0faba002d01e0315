/**
 * The Redis backend: limits shared by every instance that points at the same Redis.
 *
 * - One round trip per request: the check-and-consume of all the request's limits is one EVALSHA (EVAL
 *   when Redis does not know the script yet, e.g. after a restart). Settlements are queued and sent as
 *   one script call per event-loop turn, ahead of the next check in the same pipeline when one is waiting.
 * - Never waits on a dead Redis: no offline queue, a short deadline per check (500 ms by default), and
 *   after a failure the backend reports itself unavailable for a moment so the limiter falls back without
 *   trying each time. ioredis reconnects on its own, forever, with a capped backoff.
 * - A busy event loop is not a dead Redis: when the deadline's timer fires, the reply may already sit
 *   unread in the socket (the loop was blocked past the deadline). The deadline gives the poll phase one
 *   more turn before it gives up, so a stall of the process itself does not turn into a false outage
 *   (which, failing open, would admit requests on local limits only).
 * - Never crashes the process: every error event is handled; failures surface as rejected promises that
 *   the limiter turns into fail-open or fail-closed behaviour.
 */
import { createHash } from 'node:crypto'
import { Redis, type ChainableCommander } from 'ioredis'
import { CONSUME_LUA, INCR_LUA, SETTLE_LUA } from './redis-scripts.js'
import { SLOTS_PER_WINDOW } from './sliding-log.js'
import type { Blocked, ConsumeOutcome, ConsumeRequest, LimitBackend, SettleOp, SharedState } from './types.js'

export interface RedisBackendOptions {
  url: string
  /** prepended to every key (default 'proxy:'), so several proxies (or test runs) can share one Redis */
  prefix?: string
  /** a check not answered within this counts as a failure (default 500 ms) */
  commandTimeoutMs?: number
  /** after a failure, skip Redis for this long before trying again (default 1000 ms) */
  backoffMs?: number
  /** told about connection changes, once per change: 'down' with the reason, then 'up' */
  onStatus?: (status: 'up' | 'down', detail?: string) => void
}

interface Script {
  lua: string
  sha: string
}

const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') })
const CONSUME = script(CONSUME_LUA)
const SETTLE = script(SETTLE_LUA)
const INCR = script(INCR_LUA)

const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.includes('NOSCRIPT')

export class RedisBackend implements LimitBackend, SharedState {
  readonly kind = 'redis' as const
  readonly prefix: string
  readonly redis: Redis
  readonly #backoffMs: number
  readonly #deadlineMs: number
  readonly #onStatus: RedisBackendOptions['onStatus']
  #pending: SettleOp[] = []
  #flushScheduled = false
  #suspendedUntil = 0
  #up = false
  #closed = false

  constructor(opts: RedisBackendOptions) {
    this.prefix = opts.prefix ?? 'proxy:'
    this.#backoffMs = opts.backoffMs ?? 1000
    this.#deadlineMs = opts.commandTimeoutMs ?? 500
    this.#onStatus = opts.onStatus
    this.redis = new Redis(opts.url, {
      // Fail at once when not connected instead of queueing: a request must never wait for a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A backstop so that commands of a hung Redis do not pile up; callers give up earlier (deadline()).
      commandTimeout: this.#deadlineMs * 2,
      connectTimeout: 1000,
      // Reconnect forever: 50 ms, 100 ms, … capped at 2 s.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    })
    this.redis.on('ready', () => {
      // Load the scripts on every (re)connection, so EVALSHA rarely misses; EVAL covers the rest.
      for (const s of [CONSUME, SETTLE, INCR]) this.redis.script('LOAD', s.lua).catch(() => undefined)
      this.#setUp(true)
    })
    this.redis.on('close', () => this.#setUp(false, 'connection closed'))
    this.redis.on('error', (err: Error) => this.#setUp(false, err.message))
  }

  /** Resolves once connected, or after `timeoutMs` either way (start-up must not hang on a missing Redis). */
  async waitReady(timeoutMs = 1000): Promise<boolean> {
    if (this.redis.status === 'ready') return true
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer)
        this.redis.off('ready', onReady)
        resolve(ok)
      }
      const onReady = () => done(true)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.redis.once('ready', onReady)
    })
  }

  available(): boolean {
    return this.redis.status === 'ready' && Date.now() >= this.#suspendedUntil
  }

  async consume(req: ConsumeRequest): Promise<ConsumeOutcome> {
    const keys: string[] = []
    const args: Array<string | number> = [req.rates.length, req.quotas.length, SLOTS_PER_WINDOW]
    for (const r of req.rates) {
      keys.push(this.prefix + 'rl:' + r.key)
      args.push(r.limit, r.windowMs, r.cost)
    }
    for (const q of req.quotas) {
      keys.push(this.prefix + 'q:' + q.key)
      args.push(q.limit, q.cost, q.seed, q.endsAt)
    }
    let reply: unknown
    try {
      reply = await deadline(this.#check(keys, args), this.#deadlineMs)
    } catch (err) {
      this.#failed(err)
      throw err
    }
    this.#setUp(true)
    return parseConsume(reply as number[], req.rates.length, req.quotas.length)
  }

  async #check(keys: string[], args: Array<string | number>): Promise<unknown> {
    const settles = this.#takePending()
    if (!settles) return this.#run(CONSUME, keys, args)
    // Pending settlements ride in the same round trip, ahead of the check.
    const pipe = this.redis.pipeline()
    this.#evalsha(pipe, SETTLE, settles.keys, settles.args)
    this.#evalsha(pipe, CONSUME, keys, args)
    const results = (await pipe.exec()) ?? []
    const [settleErr] = results[0] ?? [null]
    const [err, value] = results[1] ?? [new Error('empty pipeline reply'), null]
    if (settleErr && isNoScript(settleErr)) {
      // Redis lost its script cache (SCRIPT FLUSH, restart): settle now, and check again if the check
      // ran without the settlement and refused.
      await this.#evalFallback(SETTLE, settles.keys, settles.args)
      if (!err && (value as number[])[0] !== 0) return this.#run(CONSUME, keys, args)
    }
    if (!err) return value
    if (isNoScript(err)) return this.#evalFallback(CONSUME, keys, args)
    throw err
  }

  settle(op: SettleOp): void {
    if (op.rates.length === 0 && op.quotas.length === 0) return
    this.#pending.push(op)
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      void this.flush()
    })
  }

  /** Sends queued settlements now (one script call). Failures drop them: an estimate then stands. */
  async flush(): Promise<void> {
    const batch = this.#takePending()
    if (!batch) return
    if (!this.available()) return
    try {
      await this.#run(SETTLE, batch.keys, batch.args)
    } catch (err) {
      this.#failed(err)
    }
  }

  // SharedState: the same Redis, under `<prefix>s:`.

  async get(key: string): Promise<string | null> {
    return this.#guard(() => this.redis.get(this.prefix + 's:' + key))
  }

  async getMany(keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return []
    return this.#guard(() => this.redis.mget(keys.map((k) => this.prefix + 's:' + k)))
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#guard(() => this.redis.set(this.prefix + 's:' + key, value, 'PX', Math.max(1, Math.round(ttlMs))))
  }

  async incr(key: string, ttlMs: number, by = 1): Promise<number> {
    return Number(await this.#guard(() => this.#run(INCR, [this.prefix + 's:' + key], [by, Math.max(1, Math.round(ttlMs))])))
  }

  async del(key: string): Promise<void> {
    await this.#guard(() => this.redis.del(this.prefix + 's:' + key))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    await this.flush().catch(() => undefined)
    this.#closed = true
    try {
      if (this.redis.status === 'ready') await this.redis.quit()
      else this.redis.disconnect()
    } catch {
      this.redis.disconnect()
    }
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await deadline(fn(), this.#deadlineMs)
    } catch (err) {
      this.#failed(err)
      throw err
    }
  }

  #takePending(): { keys: string[]; args: Array<string | number> } | null {
    if (this.#pending.length === 0) return null
    const ops = this.#pending
    this.#pending = []
    const keys: string[] = []
    const rateArgs: Array<string | number> = []
    const quotaArgs: Array<string | number> = []
    let nr = 0
    for (const op of ops) {
      for (const r of op.rates) {
        keys.push(this.prefix + 'rl:' + r.key)
        rateArgs.push(op.at, r.windowMs, Math.round(r.delta))
        nr++
      }
    }
    let nq = 0
    for (const op of ops) {
      for (const q of op.quotas) {
        keys.push(this.prefix + 'q:' + q.key)
        quotaArgs.push(Math.round(q.delta))
        nq++
      }
    }
    return { keys, args: [SLOTS_PER_WINDOW, nr, nq, ...rateArgs, ...quotaArgs] }
  }

  /** EVALSHA, and EVAL when Redis does not have the script cached (first use, or after a restart). */
  async #run(s: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return this.#evalFallback(s, keys, args)
    }
  }

  #evalFallback(s: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.redis.eval(s.lua, keys.length, ...keys, ...args)
  }

  #evalsha(pipe: ChainableCommander, s: Script, keys: string[], args: Array<string | number>): void {
    pipe.evalsha(s.sha, keys.length, ...keys, ...args)
  }

  #failed(err: unknown): void {
    this.#suspendedUntil = Date.now() + this.#backoffMs
    this.#setUp(false, err instanceof Error ? err.message : String(err))
  }

  #setUp(up: boolean, detail?: string): void {
    if (this.#closed) return
    if (up) this.#suspendedUntil = 0
    if (up === this.#up) return
    this.#up = up
    this.#onStatus?.(up ? 'up' : 'down', detail)
  }
}

/**
 * Rejects when `p` has not settled within `ms`. When the timer fires it first lets the event loop poll
 * once more (setImmediate runs after the poll phase), so a reply that arrived while the loop was busy
 * still wins.
 */
export function deadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (done) return
        done = true
        reject(new Error(`Redis did not answer within ${ms} ms`))
      })
    }, ms)
    p.then(
      (v) => {
        if (done) return
        done = true
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        if (done) return
        done = true
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}

function parseConsume(reply: number[], nRates: number, nQuotas: number): ConsumeOutcome {
  const [type, index, retry, never, now] = reply as [number, number, number, number, number]
  let blocked: Blocked | null = null
  if (type === 1) blocked = { type: 'rate', index: index - 1, retryAfterMs: retry, never: never === 1 }
  else if (type === 2) blocked = { type: 'quota', index: index - 1, retryAfterMs: retry, never: never === 1 }
  const rates = []
  let p = 5
  for (let i = 0; i < nRates; i++, p += 2) rates.push({ remaining: Number(reply[p]), resetMs: Number(reply[p + 1]) })
  const quotas = []
  for (let i = 0; i < nQuotas; i++, p++) quotas.push(Number(reply[p]))
  return { blocked, rates, quotas, now: Number(now) }
}
