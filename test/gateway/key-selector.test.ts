import { describe, expect, it } from 'vitest'
import { KeySelector, weightedOrder, type KeyLoad } from '../../src/gateway/key-selector.js'
import type { KeyConfig } from '../../src/store/snapshot.js'

const key = (id: number, opts: Partial<KeyConfig> = {}): KeyConfig => ({ id, label: `k${id}`, secret: `sk-${id}`, priority: 0, weight: 1, state: 'active', ...opts })
const idle = (): KeyLoad => ({ inFlight: 0, recent: 0 })
const labels = (keys: KeyConfig[]) => keys.map((k) => k.label)

/** A deterministic RNG (mulberry32), so weighted tests do not depend on luck. */
function seeded(seed: number): () => number {
  let a = seed
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('key selection strategies', () => {
  const keys = [key(1), key(2), key(3)]

  it('round-robin rotates the first key per request, per provider', () => {
    const s = new KeySelector()
    expect(labels(s.order(1, keys, 'round-robin', idle))).toEqual(['k1', 'k2', 'k3'])
    expect(labels(s.order(1, keys, 'round-robin', idle))).toEqual(['k2', 'k3', 'k1'])
    expect(labels(s.order(2, keys, 'round-robin', idle))).toEqual(['k1', 'k2', 'k3'])
    expect(labels(s.order(1, keys, 'round-robin', idle))).toEqual(['k3', 'k1', 'k2'])
    expect(labels(s.order(1, keys, 'round-robin', idle))).toEqual(['k1', 'k2', 'k3'])
  })

  it('round-robin spreads over the keys still available', () => {
    const s = new KeySelector()
    const firsts = Array.from({ length: 6 }, () => s.order(1, [keys[0]!, keys[2]!], 'round-robin', idle)[0]!.label)
    expect(firsts).toEqual(['k1', 'k3', 'k1', 'k3', 'k1', 'k3'])
  })

  it('priority puts the lowest number first (ties by id), the next only as a fallback', () => {
    const s = new KeySelector()
    const ks = [key(1, { priority: 5 }), key(2, { priority: 1 }), key(3, { priority: 1 }), key(4, { priority: 0 })]
    for (let i = 0; i < 3; i++) expect(labels(s.order(1, ks, 'priority', idle))).toEqual(['k4', 'k2', 'k3', 'k1'])
  })

  it('least-used prefers fewest in flight, then fewest recent requests, then priority', () => {
    const s = new KeySelector()
    const load: Record<number, KeyLoad> = { 1: { inFlight: 2, recent: 0 }, 2: { inFlight: 0, recent: 9 }, 3: { inFlight: 0, recent: 3 } }
    expect(labels(s.order(1, keys, 'least-used', (k) => load[k.id]!))).toEqual(['k3', 'k2', 'k1'])
    load[3] = { inFlight: 1, recent: 0 }
    expect(labels(s.order(1, keys, 'least-used', (k) => load[k.id]!))).toEqual(['k2', 'k3', 'k1'])
    expect(labels(s.order(1, [key(5, { priority: 1 }), key(6)], 'least-used', idle))).toEqual(['k6', 'k5'])
  })

  it('weighted picks the first key in proportion to its weight', () => {
    const ks = [key(1, { weight: 1 }), key(2, { weight: 3 }), key(3, { weight: 6 })]
    const s = new KeySelector(seeded(42))
    const firsts: Record<string, number> = { k1: 0, k2: 0, k3: 0 }
    const n = 20_000
    for (let i = 0; i < n; i++) firsts[s.order(1, ks, 'weighted', idle)[0]!.label]!++
    expect(firsts.k1! / n).toBeCloseTo(0.1, 1)
    expect(firsts.k2! / n).toBeCloseTo(0.3, 1)
    expect(firsts.k3! / n).toBeCloseTo(0.6, 1)
  })

  it('weighted order is a function of the injected RNG and keeps every key', () => {
    const ks = [key(1, { weight: 1 }), key(2, { weight: 1 })]
    // u^(1/w) is larger for the larger draw: k2 draws 0.9, k1 draws 0.1
    const draws = [0.1, 0.9]
    const order = weightedOrder(ks, () => draws.shift()!)
    expect(labels(order)).toEqual(['k2', 'k1'])
  })

  it('returns one key or none unchanged', () => {
    const s = new KeySelector()
    expect(s.order(1, [], 'weighted', idle)).toEqual([])
    expect(labels(s.order(1, [key(9)], 'round-robin', idle))).toEqual(['k9'])
  })
})
