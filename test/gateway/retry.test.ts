import { describe, expect, it } from 'vitest'
import { backoffDelay, parseRetryAfter } from '../../src/gateway/retry.js'

describe('backoff with full jitter', () => {
  const cfg = { base: 100, max: 1000 }

  it('waits a random share of a ceiling that doubles per failure, up to max', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, cfg, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999])
    expect(backoffDelay(3, cfg, () => 0.5)).toBe(200)
    expect(backoffDelay(3, cfg, () => 0)).toBe(0)
  })

  it('never waits before the first failure, or when backoff is off', () => {
    expect(backoffDelay(0, cfg, () => 1)).toBe(0)
    expect(backoffDelay(3, { base: 0, max: 1000 }, () => 1)).toBe(0)
  })

  it('stays within [0, ceiling] for any draw', () => {
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(4, cfg, Math.random)
      expect(d).toBeGreaterThanOrEqual(0)
      expect(d).toBeLessThan(800)
    }
  })
})

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')

  it('reads delta seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    expect(parseRetryAfter('1.5', now)).toBe(1500)
  })

  it('reads an HTTP date', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0)
  })

  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeNull()
    expect(parseRetryAfter('', now)).toBeNull()
    expect(parseRetryAfter('soon', now)).toBeNull()
    expect(parseRetryAfter('-5', now)).toBeNull()
  })
})
