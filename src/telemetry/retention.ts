/**
 * Automatic audit retention: deletes rows older than the configured number of days once an hour (and
 * shortly after start), in chunks handed to the store writer (the server's writer thread), so neither
 * requests nor the event loop wait on a delete: on the event loop, each 2,000-row chunk (four indexes)
 * held it for tens of milliseconds, and waited for the write lock besides.
 */
import type { Kysely } from 'kysely'
import type { WriteStatement } from '../store/audit-batch.js'
import type { Database } from '../store/schema.js'
import { pruneAuditStatement } from '../store/repos/audit.js'
import type { Logger } from './logger.js'

export interface RetentionOptions {
  /** commits statements and resolves with the rows they changed (AuditWriter.apply) */
  apply: (writes: WriteStatement[]) => Promise<number>
  /** compiles the deletes in the store's dialect */
  db: Kysely<Database>
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
const CHUNKS_PER_BATCH = 5
const CHUNK_ROWS = 2000

export function startRetention(opts: RetentionOptions): Retention {
  let stopped = false
  let running: Promise<number> | null = null

  const run = (): Promise<number> => {
    running ??= (async () => {
      const before = new Date(Date.now() - opts.days * DAY_MS).toISOString()
      let total = 0
      try {
        // A few chunks per hand-over, committed with one of the writer's batches: at most 10,000 rows a time.
        const chunks = Array.from({ length: CHUNKS_PER_BATCH }, () => pruneAuditStatement(opts.db, before, CHUNK_ROWS))
        for (;;) {
          if (stopped) break
          const n = await opts.apply(chunks)
          total += n
          if (n < CHUNKS_PER_BATCH * CHUNK_ROWS) break
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
