/**
 * Automatic audit retention: deletes rows older than the configured number of days once an hour (and
 * shortly after start), in chunks handed to the store writer (the server's writer thread), so neither
 * requests nor the event loop wait on a delete: on the event loop, each 2,000-row chunk (four indexes)
 * held it for tens of milliseconds, and waited for the write lock besides.
 */
import type { Kysely } from 'kysely'
import type { WriteStatement } from '../store/audit-batch.js'
import { deleteRowsWithObjects } from '../store/capture-objects.js'
import type { ObjectStore } from '../store/object-store.js'
import { deleteAuditRowsStatement, pruneAuditStatement } from '../store/repos/audit.js'
import type { Database } from '../store/schema.js'
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
  /** the capture store (--capture-store): old rows' objects are deleted first, and their rows only once they are */
  capture?: { objects: ObjectStore; db: Kysely<Database> }
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
        if (opts.capture) total += await pruneObjects(opts, before)
        // A few chunks per hand-over, committed with one of the writer's batches: at most 10,000 rows a time.
        // With a capture store, rows that still have objects stay (their deletion failed above).
        const chunks = Array.from({ length: CHUNKS_PER_BATCH }, () => pruneAuditStatement(opts.db, before, CHUNK_ROWS, { inlineOnly: opts.capture !== undefined }))
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

/** Deletes old rows' objects, then those rows (through the writer); a failing store is logged and the rows kept for the next run. */
async function pruneObjects(opts: RetentionOptions, before: string): Promise<number> {
  const { objects, db } = opts.capture!
  let deleted = 0
  try {
    await deleteRowsWithObjects(db, objects, before, async (ids) => {
      const n = await opts.apply([deleteAuditRowsStatement(db, ids)])
      deleted += n
      return n
    })
  } catch (err) {
    opts.logger.warn({ event: 'audit_prune', location: objects.location, err: err instanceof Error ? err.message : String(err) }, 'audit retention could not delete captured bodies from the capture store; their rows are kept until a later run')
  }
  return deleted
}
