/**
 * Upstream health shared between instances, through the limits backend's small shared state
 * (`limits.shared`: Redis when instances share one, this process's memory otherwise).
 *
 * Published (fire-and-forget, only when something changes, never per request):
 *   circuit:<scope>     open-until (epoch ms), TTL = open_s    when a breaker opens (scope p:<id> or k:<id>)
 *   cooldown:k:<id>     {"until","epoch","reason"}, TTL = cooldown    when a key starts cooling after a 429
 *   invalid:k:<id>      {"epoch","reason"}, TTL = 7 days       when the upstream rejects a key (401/403)
 * Cleared: circuit:<scope> on an operator reset (`proxy circuit …` bumps the override epoch) and on a
 * key re-enable; cooldown and invalid marks when the key is re-enabled (its health epoch moves: a mark
 * of an older epoch is ignored by every instance anyway, so a failed delete is harmless) or retired.
 *
 * Observed: a background poll, every `pollMs` (250 ms by default), reads every key this instance
 * knows in one MGET and folds what it finds into the local breakers and key health. The request path
 * reads only local memory, exactly as with one instance.
 *
 * Why a poll and not pub/sub: the poll reads the state itself, not news about it, so it needs no
 * second (subscriber) connection, cannot miss an event across a reconnect or a Redis restart, needs no
 * catch-up logic, and picks up what other instances opened before this one started. One small MGET a
 * quarter second per instance is nothing for Redis; the price is up to `pollMs` of delay, well within
 * what a circuit (open for seconds) or a cooldown needs. Absence of a key never clears local state
 * (Redis may have lost it, or it expired with the period it described).
 *
 * Half-open probing stays local: a shared open period ends at the same time everywhere (the TTL and
 * the open-until value agree), then each instance's breaker half-opens and sends its own probe. A probe
 * that fails re-opens the circuit and publishes the new period, which also takes the other instances
 * out of half-open; a probe that succeeds closes only that instance's breaker (the others probe too).
 *
 * Times are epoch ms from the publishing instance's clock; instances are expected to run NTP.
 */
import type { SharedState } from '../core/shared-state.js'

export const DEFAULT_SHARED_POLL_MS = 250
/** how long an invalid mark lives without a re-enable: the store keeps the key invalid anyway */
export const INVALID_TTL_MS = 7 * 86_400_000

export const sharedKeys = {
  circuit: (scope: string) => `circuit:${scope}`,
  cooldown: (keyId: number) => `cooldown:k:${keyId}`,
  invalid: (keyId: number) => `invalid:k:${keyId}`,
}

/** A key's mark (cooldown or invalid), tagged with the key's health epoch. */
export interface KeyMark {
  epoch: number
  reason: string
  /** cooldowns only */
  until?: number
}

export function parseKeyMark(value: string): KeyMark | null {
  try {
    const v = JSON.parse(value) as Partial<KeyMark>
    if (typeof v.epoch !== 'number' || typeof v.reason !== 'string') return null
    if (v.until !== undefined && typeof v.until !== 'number') return null
    return { epoch: v.epoch, reason: v.reason, ...(v.until !== undefined ? { until: v.until } : {}) }
  } catch {
    return null
  }
}

/** What the registry needs to publish (HealthRegistryDeps.shared). */
export interface SharedHealthPublisher {
  publish(key: string, value: string, ttlMs: number): void
  clear(key: string): void
  /** deletes a key mark unless it belongs to `epoch` or a later one (another instance's newer mark) */
  clearOlderThan(key: string, epoch: number): void
}

/** What the poll feeds: the registry (through the gateway, which syncs the config snapshot first). */
export interface SharedHealthObserver {
  /** the shared keys to read */
  watched(): readonly string[]
  /** their values, in the same order */
  observe(keys: readonly string[], values: ReadonlyArray<string | null>): void
}

export interface SharedHealthOptions {
  state: SharedState
  /** 0: publish only, never poll */
  pollMs?: number
  /** a failed write or poll; the default ignores it (the limits backend already reports outages) */
  onError?: (err: unknown) => void
}

export class SharedHealth implements SharedHealthPublisher {
  readonly #state: SharedState
  readonly #pollMs: number
  readonly #onError: (err: unknown) => void
  #timer: NodeJS.Timeout | null = null
  #observer: SharedHealthObserver | null = null
  #polling: Promise<void> | null = null
  #stopped = false

  constructor(opts: SharedHealthOptions) {
    this.#state = opts.state
    this.#pollMs = opts.pollMs ?? DEFAULT_SHARED_POLL_MS
    this.#onError = opts.onError ?? (() => undefined)
  }

  get pollMs(): number {
    return this.#pollMs
  }

  publish(key: string, value: string, ttlMs: number): void {
    if (this.#stopped || ttlMs <= 0) return
    this.#state.set(key, value, ttlMs).catch(this.#onError)
  }

  clear(key: string): void {
    if (this.#stopped) return
    this.#state.del(key).catch(this.#onError)
  }

  clearOlderThan(key: string, epoch: number): void {
    if (this.#stopped) return
    // Not atomic: a mark another instance writes between the read and the delete is lost, and that
    // instance's key then goes on being tried elsewhere until it fails there too. Rare and self-healing.
    this.#state
      .get(key)
      .then((value) => {
        const mark = value === null ? null : parseKeyMark(value)
        if (value !== null && (mark === null || mark.epoch < epoch)) return this.#state.del(key)
      })
      .catch(this.#onError)
  }

  /** Starts polling (one read at once, then every pollMs); the timer does not keep the process alive. */
  start(observer: SharedHealthObserver): void {
    this.#observer = observer
    if (this.#pollMs <= 0 || this.#timer || this.#stopped) return
    void this.poll()
    this.#timer = setInterval(() => void this.poll(), this.#pollMs)
    this.#timer.unref()
  }

  /** One read of every watched key; a read still running is joined, not doubled. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = null))
    return this.#polling
  }

  async #poll(): Promise<void> {
    const observer = this.#observer
    if (!observer || this.#stopped) return
    try {
      const keys = observer.watched()
      if (keys.length === 0) return
      const values = await this.#state.getMany(keys)
      if (!this.#stopped) observer.observe(keys, values)
    } catch (err) {
      this.#onError(err)
    }
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
  }
}
