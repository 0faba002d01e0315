import type { KeyConfig, ProviderConfig } from '../store/snapshot.js'

/**
 * Orders a provider's usable keys for one request: the first is tried first, the rest are the
 * same-provider fallbacks. Round-robin rotates the start per request so load spreads across keys.
 */
export class KeySelector {
  readonly #cursor = new Map<number, number>()

  order(provider: ProviderConfig): KeyConfig[] {
    const active = provider.keys.filter((k) => k.state === 'active')
    if (active.length <= 1) return active
    const start = this.#cursor.get(provider.id) ?? 0
    this.#cursor.set(provider.id, (start + 1) % active.length)
    return [...active.slice(start % active.length), ...active.slice(0, start % active.length)]
  }
}
