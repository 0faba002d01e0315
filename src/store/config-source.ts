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
 * Holds the current snapshot and swaps it when another process (the CLI, the admin API of another
 * instance) changes the configuration. `PRAGMA data_version` changes exactly when another connection
 * commits, so a tick costs one in-memory pragma; only then is the configuration counter read (migration
 * 0005: triggers on the configuration tables), because most other commits are the audit thread's rows,
 * several a second under load, and are no reason to reload.
 */
export async function createConfigSource(store: Store, opts: ConfigSourceOptions = {}): Promise<ConfigSource> {
  const configVersion = store.sqlite.prepare('SELECT version FROM config_version WHERE id = 1').pluck()
  const readConfigVersion = () => (configVersion.get() as number | undefined) ?? 0
  // prepared once: pragma() would compile the statement at every tick
  const dataVersionStatement = store.sqlite.prepare('PRAGMA data_version').pluck()
  const dataVersion = () => dataVersionStatement.get() as number
  let lastConfig = readConfigVersion()
  let snapshot = await loadSnapshot(store)
  let lastVersion = dataVersion()
  let loading: Promise<ConfigSnapshot> | null = null

  const reload = (): Promise<ConfigSnapshot> => {
    if (!loading) {
      // Read before the snapshot, so a change made meanwhile is seen at the next tick. This also covers
      // the server's own writes (the admin API reloads after them), which bump the counter but not
      // data_version: no second reload when another commit comes along.
      try {
        lastConfig = readConfigVersion()
      } catch (err) {
        return Promise.reject(err)
      }
    }
    loading ??= loadSnapshot(store, snapshot)
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
    try {
      const version = dataVersion()
      if (version === lastVersion) return
      lastVersion = version
      // reload() records the counter itself
      if (readConfigVersion() === lastConfig) return
    } catch (err) {
      opts.onError?.(err)
      return
    }
    reload().catch((err) => opts.onError?.(err))
  }, opts.pollMs ?? 250)
  timer.unref()

  return {
    current: () => snapshot,
    reload,
    close: () => clearInterval(timer),
  }
}
