/**
 * Automatic audit retention: deletes rows older than the configured number of days once an hour (and
 * shortly after start), in small chunks with a pause between them, so neither requests nor the event
 * loop wait on one long delete.
 */
import type { Store } from '../store/db.js'
import { pruneAuditChunk } from '../store/repos/audit.js'
import type { Logger } from './logger.js'

export interface RetentionOptions {
  store: Store
  days: number
  logger: Logger
  intervalMs?: number
  firstRunMs?: number
}

export interface Retention {
  /** runs one prune now; resolves with the number of rows deleted */
  run(): Promise<number>
  stop(): void
}

const DAY_MS = 86_400_000

export function startRetention(opts: RetentionOptions): Retention {
  let stopped = false
  let running: Promise<number> | null = null

  const run = (): Promise<number> => {
    running ??= (async () => {
      const before = new Date(Date.now() - opts.days * DAY_MS).toISOString()
      let total = 0
      try {
        for (;;) {
          if (stopped || !opts.store.sqlite.open) break
          if (opts.store.sqlite.inTransaction) {
            await new Promise((r) => setTimeout(r, 20))
            continue
          }
          const n = pruneAuditChunk(opts.store.sqlite, before)
          total += n
          if (n === 0) break
          await new Promise((r) => setImmediate(r))
        }
        if (total > 0) opts.logger.info({ event: 'audit_prune', deleted: total, before }, 'audit retention pruned old rows')
      } catch (err) {
        opts.logger.warn({ event: 'audit_prune', err: err instanceof Error ? err.message : String(err) }, 'audit retention failed; will retry')
      }
      return total
    })().finally(() => {
      running = null
    })
    return running
  }

  const first = setTimeout(() => void run(), opts.firstRunMs ?? 5_000)
  const timer = setInterval(() => void run(), opts.intervalMs ?? 3_600_000)
  first.unref()
  timer.unref()
  return {
    run,
    stop() {
      stopped = true
      clearTimeout(first)
      clearInterval(timer)
    },
  }
}
