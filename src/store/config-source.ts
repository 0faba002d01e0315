import { configWatch } from './config-watch.js'
import type { Store } from './db.js'
import { loadSnapshot, type ConfigSnapshot } from './snapshot.js'
import type { StoreHealth } from './store-health.js'

export interface ConfigSource {
  current(): ConfigSnapshot
  /** Reloads now; used after the server itself wrote the store (its own writes do not bump data_version). */
  reload(): Promise<ConfigSnapshot>
  close(): void
}

export interface ConfigSourceOptions {
  pollMs?: number
  onReload?: (snapshot: ConfigSnapshot) => void
  onError?: (err: unknown) => void
  /** told when the PostgreSQL LISTEN connection is lost and back */
  health?: StoreHealth
}

/**
 * Holds the current snapshot and swaps it when another process (the CLI, the admin API of another
 * instance) changes the configuration: the backend's watch (config-watch.ts) says when the configuration
 * counter (migration 0005: triggers on the configuration tables) may have moved, and only a counter
 * other than the one loaded causes a reload.
 */
export async function createConfigSource(store: Store, opts: ConfigSourceOptions = {}): Promise<ConfigSource> {
  const watch = configWatch(store, { pollMs: opts.pollMs, health: opts.health })
  let lastConfig = await watch.version()
  let snapshot = await loadSnapshot(store)
  let loading: Promise<ConfigSnapshot> | null = null

  const reload = (): Promise<ConfigSnapshot> => {
    // Read before the snapshot, so a change made meanwhile is seen at the next tick. This also covers
    // the server's own writes (the admin API reloads after them), which bump the counter but not
    // data_version: no second reload when another commit comes along.
    loading ??= watch
      .version()
      .then((version) => {
        lastConfig = version
        return loadSnapshot(store, snapshot)
      })
      .then((next) => {
        snapshot = next
        opts.onReload?.(next)
        return next
      })
      .finally(() => {
        loading = null
      })
    return loading
  }

  watch.start(
    (version) => {
      if (version === lastConfig) return
      reload().catch((err) => opts.onError?.(err))
    },
    (err) => opts.onError?.(err),
  )

  return {
    current: () => snapshot,
    reload,
    close: () => watch.close(),
  }
}
