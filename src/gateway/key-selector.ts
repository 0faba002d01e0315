/**
 * Orders a provider's keys for one request: the first is tried first, the rest are the same-provider
 * fallbacks. The caller passes only keys that can take a call now (active, healthy, circuit not open).
 *
 * - round-robin: rotates the starting key per request, so load spreads evenly.
 * - priority: lowest `priority` first (ties by id); the next only when it is unavailable or fails.
 * - least-used: fewest requests in flight, ties by fewest recent requests, then priority.
 * - weighted: a random order in which each key comes first in proportion to its weight.
 */
import type { KeyStrategy } from '../core/policy-schema.js'
import type { KeyConfig } from '../core/config.js'

export interface KeyLoad {
  inFlight: number
  /** requests over the last minute */
  recent: number
}

export class KeySelector {
  readonly #cursor = new Map<number, number>()
  readonly #random: () => number

  constructor(random: () => number = Math.random) {
    this.#random = random
  }

  order(providerId: number, keys: readonly KeyConfig[], strategy: KeyStrategy, load: (key: KeyConfig) => KeyLoad): KeyConfig[] {
    if (keys.length <= 1) return [...keys]
    switch (strategy) {
      case 'priority':
        return [...keys].sort(byPriority)
      case 'least-used': {
        const loads = new Map(keys.map((k) => [k.id, load(k)]))
        return [...keys].sort((a, b) => {
          const la = loads.get(a.id)!
          const lb = loads.get(b.id)!
          return la.inFlight - lb.inFlight || la.recent - lb.recent || byPriority(a, b)
        })
      }
      case 'weighted':
        return weightedOrder(keys, this.#random)
      case 'round-robin':
      default: {
        const sorted = [...keys].sort(byPriority)
        const start = (this.#cursor.get(providerId) ?? 0) % sorted.length
        this.#cursor.set(providerId, start + 1)
        return [...sorted.slice(start), ...sorted.slice(0, start)]
      }
    }
  }
}

const byPriority = (a: KeyConfig, b: KeyConfig) => a.priority - b.priority || a.id - b.id

/**
 * Weighted random order without replacement (Efraimidis-Spirakis): each key draws u^(1/w) and the
 * largest draw goes first, so P(key first) = w / sum(w), and the rest follow in the same spirit.
 */
export function weightedOrder(keys: readonly KeyConfig[], random: () => number): KeyConfig[] {
  return keys
    .map((key) => {
      const w = Math.max(key.weight, 0)
      const u = Math.min(Math.max(random(), Number.MIN_VALUE), 1)
      return { key, score: w > 0 ? Math.log(u) / w : -Infinity }
    })
    .sort((a, b) => b.score - a.score || byPriority(a.key, b.key))
    .map((s) => s.key)
}
