/**
 * The server's side of its store writer thread (audit-thread.js), on either backend: batches are posted
 * to the thread, which commits them on a connection of its own, and what it reports (commits, drops,
 * the store's health, the outcome of handed-over statements) is relayed to the caller. SQLite's sink
 * (audit-sink.ts) and PostgreSQL's (postgres-sink.ts) differ only in what the thread opens.
 */
import { Worker } from 'node:worker_threads'
import type { AuditSink, AuditSinkEvents } from './audit-sink.js'
import type { WriteStatement } from './audit-batch.js'
import { auditThreadFile } from './audit-thread-file.js'
import type { StoreKind } from './dialect.js'
import type { UsageDelta } from './repos/usage.js'
import type { StoreHealth } from './store-health.js'

const THREAD_YOUNG_GENERATION_MB = 3

type Reply =
  | { ready: true }
  | { flushed: { ok: boolean; seconds: number; rows: number; message?: string } }
  | { dropped: number }
  | { applied: Array<[id: number, changes: number]> }
  | { refused: number[]; message: string }
  | { synced: number; rows: number }
  | { closed: number }
  /** the store stopped answering (the reason), or answers again (null) */
  | { health: string | null }

export interface WriterThreadOptions {
  /** what the thread opens, as its body (sqlite-thread.js, postgres-thread.js) reads it from workerData */
  store: { kind: StoreKind } & Record<string, unknown>
  events: AuditSinkEvents
  /** told when the thread finds the store down or up again (PostgreSQL) */
  health?: StoreHealth
  /** the thread commits at least this often (ms) while it holds rows; default 100 */
  flushMs?: number
  /** and as soon as this many rows wait; default 1000 */
  batchRows?: number
  /** rows the thread may hold: while the store refuses writes, or while it commits more slowly than rows come; default 50 000 */
  maxBuffered?: number
  /** rows handed over and not yet committed past which new rows are dropped here; default maxBuffered */
  maxHandedOver?: number
  /** used from the moment the thread fails: it cannot start, crashes or exits */
  fallback: AuditSink
  /** told once when the fallback takes over, with how many rows the thread held */
  onFallback?: (reason: string, lost: number) => void
}

/**
 * Rows go to the thread as soon as the writer has a batch (until the thread is ready they wait here);
 * the thread holds them until it commits. The thread is unreferenced while it holds nothing (it never
 * keeps a finished process alive) and referenced while it does, so rows are not cut off by an exit. If it cannot start, the rows waiting here go to the fallback; if it dies later, what it held is
 * reported lost (as a crash would lose it) and the fallback takes over.
 */
export function writerThreadSink(opts: WriterThreadOptions): AuditSink {
  const maxBuffered = opts.maxBuffered ?? 50_000
  const maxHandedOver = opts.maxHandedOver ?? maxBuffered
  const syncs = new Map<number, (rows: number) => void>()
  let nextSync = 1
  /** statements handed to the thread (or waiting for it), by id, until it says they are committed */
  const applying = new Map<number, { writes: WriteStatement[]; resolve: (changes: number) => void; reject: (err: Error) => void }>()
  let nextApply = 1
  let held = 0
  let worker: Worker | null = null
  let failed = false
  let closing: ((lost: number) => void) | null = null
  /** the thread has written what it held and said so: its exit is expected */
  let ended = false
  let exited: Promise<void> = Promise.resolve()
  /** batches taken before the thread was ready */
  let early: Array<{ rows: unknown[][]; usage: UsageDelta[] } | { writes: WriteStatement[]; id: number }> | null = []
  let started: () => void = () => {}
  const startedOrFailed = new Promise<void>((resolve) => (started = resolve))

  const settle = () => {
    if (!worker) return
    if (held > 0 || syncs.size > 0 || applying.size > 0 || closing) worker.ref()
    else worker.unref()
  }

  const fail = (reason: string) => {
    if (failed) return
    failed = true
    worker = null
    // Never reached the thread: written through the fallback, nothing lost.
    const waiting = early ?? []
    early = null
    for (const b of waiting) {
      if (!('rows' in b)) continue
      held -= b.rows.length
      opts.fallback.write(b.rows, b.usage).catch(() => opts.events.dropped(b.rows.length))
    }
    // Statements the thread did not commit (or never got) are not lost: the fallback commits them.
    for (const a of applying.values()) opts.fallback.apply(a.writes).then(a.resolve, a.reject)
    applying.clear()
    started()
    const lost = held
    held = 0
    for (const resolve of syncs.values()) resolve(0)
    syncs.clear()
    if (closing) {
      closing(lost)
      closing = null
      return
    }
    if (lost > 0) opts.events.dropped(lost)
    opts.onFallback?.(reason, lost)
  }

  try {
    const w = new Worker(auditThreadFile(), {
      // The thread only unpacks row batches (on PostgreSQL, encodes them) and holds them until the next
      // commit: V8's default young generation would be resident memory it has no use for (docs/performance.md).
      resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB },
      workerData: {
        ...opts.store,
        flushMs: opts.flushMs ?? 100,
        batchRows: opts.batchRows ?? 1000,
        maxBuffered,
      },
    })
    worker = w
    w.unref()
    w.on('message', (reply: Reply) => {
      if ('ready' in reply) {
        for (const b of early ?? []) w.postMessage(b)
        early = null
        started()
      } else if ('flushed' in reply) {
        held -= reply.flushed.rows
        opts.events.flushed(reply.flushed.ok, reply.flushed.seconds, reply.flushed.message)
      } else if ('applied' in reply) {
        for (const [id, changes] of reply.applied) {
          applying.get(id)?.resolve(changes)
          applying.delete(id)
        }
      } else if ('refused' in reply) {
        for (const id of reply.refused) {
          applying.get(id)?.reject(new Error(reply.message))
          applying.delete(id)
        }
      } else if ('health' in reply) {
        if (reply.health === null) opts.health?.up('writer')
        else opts.health?.down('writer', reply.health)
      } else if ('dropped' in reply) {
        held -= reply.dropped
        opts.events.dropped(reply.dropped)
      } else if ('synced' in reply) {
        syncs.get(reply.synced)?.(reply.rows)
        syncs.delete(reply.synced)
      } else if ('closed' in reply) {
        held = 0
        ended = true
        // what the thread could not commit before it closed: the caller's to retry
        for (const a of applying.values()) a.reject(new Error('the store writer closed before it could commit these writes'))
        applying.clear()
        closing?.(reply.closed)
        closing = null
      }
      settle()
    })
    w.on('error', (err) => fail(err.message))
    exited = new Promise((resolve) =>
      w.once('exit', (code) => {
        // Node delivers a thread's last messages and then 'exit' in one go, before close() has resumed:
        // an exit after the thread said it closed is the end of a clean close, not a failure.
        try {
          if (!ended) fail(`exited with code ${code}`)
        } finally {
          resolve()
        }
      }),
    )
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err))
  }

  return {
    async write(rows, usage) {
      if (!worker) return opts.fallback.write(rows, usage)
      // Rows reach the thread faster than it commits them when it cannot get enough of a busy core:
      // past the bound its backlog would grow without end (and the process's memory with it), so new
      // rows are dropped and counted. Their usage still goes: the usage table stays whole.
      if (held + rows.length > maxHandedOver && rows.length > 0) {
        opts.events.dropped(rows.length)
        rows = []
      }
      held += rows.length
      if (early) early.push({ rows, usage })
      else worker.postMessage({ rows, usage })
      settle()
      return 0
    },
    apply(writes) {
      if (!worker) return opts.fallback.apply(writes)
      const id = nextApply++
      const done = new Promise<number>((resolve, reject) => applying.set(id, { writes, resolve, reject }))
      if (early) early.push({ writes, id })
      else worker.postMessage({ writes, id })
      settle()
      return done
    },
    async flush() {
      if (early) {
        // referenced while waiting, or a process with nothing else to do would exit under the await
        worker?.ref()
        await startedOrFailed
      }
      if (!worker) return opts.fallback.flush()
      const id = nextSync++
      const done = new Promise<number>((resolve) => syncs.set(id, resolve))
      worker.postMessage({ sync: id })
      settle()
      return done
    },
    get buffered() {
      return worker ? held : opts.fallback.buffered
    },
    async close() {
      let lost = 0
      if (early) {
        worker?.ref()
        await startedOrFailed
      }
      if (worker) {
        const w = worker
        lost = await new Promise<number>((resolve) => {
          closing = resolve
          w.postMessage('close')
          settle()
        })
        worker = null
        failed = true
        // referenced until it has ended, or the process could exit under this await
        w.ref()
        await exited
      }
      return lost + (await opts.fallback.close())
    },
  }
}
