/**
 * Waits between attempts: exponential backoff with full jitter, and upstream Retry-After values.
 * Pure functions; the gateway sleeps through its injected clock.
 */
import type { EffectivePolicy } from '../core/policy-schema.js'

export type BackoffSettings = EffectivePolicy['retry']['backoff_ms']

/**
 * Full jitter (a random wait between 0 and a ceiling that doubles per failure, up to `max`): spreads
 * retries from many clients instead of having them hit a recovering upstream in lockstep.
 * `failures` counts the failures already seen on the provider about to be called again (>= 1).
 */
export function backoffDelay(failures: number, cfg: BackoffSettings, random: () => number = Math.random): number {
  if (failures <= 0 || cfg.max <= 0 || cfg.base <= 0) return 0
  const ceiling = Math.min(cfg.max, cfg.base * 2 ** Math.min(failures - 1, 30))
  return Math.floor(Math.min(Math.max(random(), 0), 1) * ceiling)
}

/** Retry-After as milliseconds from now: delta-seconds ('120', '1.5') or an HTTP date. Null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (!value) return null
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  // An HTTP date names its weekday and month ('Thu, 01 Jan 2026 00:00:07 GMT'); Date.parse would take '-5' as a year.
  if (!/[a-z]{3}/i.test(text)) return null
  const date = Date.parse(text)
  if (Number.isNaN(date)) return null
  return Math.max(0, date - now)
}
