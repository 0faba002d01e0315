import type { Store } from './db.js'
import { loadSnapshot, type ConfigSnapshot } from './snapshot.js'

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
}

/**
 * Holds the current snapshot and swaps it when another process (the CLI) commits to the store.
 * `PRAGMA data_version` changes exactly when another connection commits, so polling it costs one
 * in-memory pragma per tick and never reads tables unless something changed.
 */
export async function createConfigSource(store: Store, opts: ConfigSourceOptions = {}): Promise<ConfigSource> {
  let snapshot = await loadSnapshot(store)
  let lastVersion = dataVersion(store)
  let loading: Promise<ConfigSnapshot> | null = null

  const reload = (): Promise<ConfigSnapshot> => {
    loading ??= loadSnapshot(store)
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

  const timer = setInterval(() => {
    let version: number
    try {
      version = dataVersion(store)
    } catch (err) {
      opts.onError?.(err)
      return
    }
    if (version === lastVersion) return
    lastVersion = version
    reload().catch((err) => opts.onError?.(err))
  }, opts.pollMs ?? 250)
  timer.unref()

  return {
    current: () => snapshot,
    reload,
    close: () => clearInterval(timer),
  }
}

function dataVersion(store: Store): number {
  return store.sqlite.pragma('data_version', { simple: true }) as number
}
