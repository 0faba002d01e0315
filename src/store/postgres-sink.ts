/**
 * The server's store writer on PostgreSQL. The driver is asynchronous, so no thread is needed (unlike
 * SQLite's, audit-thread.js): rows, usage deltas and compiled statements are gathered here and committed
 * together, one transaction a batch, with multi-row INSERTs. While the database is unreachable nothing
 * waits on it: rows are held up to `maxBuffered` (the oldest dropped and counted beyond), usage deltas
 * are summed per (day, client, model), which keeps them bounded, and written once it is back.
 */
import type pg from 'pg'
import type { AuditSink, AuditSinkEvents } from './audit-sink.js'
import { addUsageDelta, type WriteStatement } from './audit-batch.js'
import type { PostgresStore } from './db.js'
import { describeConnectionError, isConnectionFailure } from './dialect.js'
import { AUDIT_COLUMNS, auditInsertSql } from './repos/audit.js'
import { USAGE_COLUMNS, usageUpsertSql, type UsageDelta } from './repos/usage.js'
import type { StoreHealth } from './store-health.js'

export interface PostgresSinkOptions {
  events: AuditSinkEvents
  health?: StoreHealth
  /** commits at least this often (ms) while it holds something; default 100 */
  flushMs?: number
  /** and as soon as this many rows wait; default 1000 */
  batchRows?: number
  /** rows held while the database refuses writes; default 50 000 */
  maxBuffered?: number
  /** how long to wait before trying again after a failed commit; default 1000 ms */
  retryMs?: number
}

/** rows per INSERT statement: PostgreSQL takes at most 65 535 parameters in one */
const ROWS_PER_STATEMENT = 1000
/** rows per transaction, so one batch stays short */
const ROWS_PER_TRANSACTION = 5000

interface Pending {
  writes: WriteStatement[]
  resolve: (changes: number) => void
  reject: (err: Error) => void
}

export function postgresAuditSink(store: PostgresStore, opts: PostgresSinkOptions): AuditSink {
  const flushMs = opts.flushMs ?? 100
  const batchRows = opts.batchRows ?? 1000
  const maxBuffered = opts.maxBuffered ?? 50_000
  const retryMs = opts.retryMs ?? 1000
  let rows: unknown[][] = []
  let usage = new Map<string, UsageDelta>()
  let pending: Pending[] = []
  let inFlight = 0
  let committing: Promise<number> | null = null
  let timer: NodeJS.Timeout | null = null
  let failing = false

  const schedule = (ms: number) => {
    if (timer) return
    timer = setTimeout(() => {
      timer = null
      void commit()
    }, ms)
    timer.unref()
  }

  const hold = (more: unknown[][]) => {
    for (const row of more) rows.push(row)
    if (rows.length > maxBuffered) {
      const dropped = rows.length - maxBuffered
      rows.splice(0, dropped)
      opts.events.dropped(dropped)
    }
  }

  /** One transaction: up to ROWS_PER_TRANSACTION rows, every usage delta and statement held. */
  const commitOnce = async (): Promise<number> => {
    if (rows.length === 0 && usage.size === 0 && pending.length === 0) return 0
    const batch = rows.splice(0, ROWS_PER_TRANSACTION)
    const deltas = usage
    const writes = pending
    usage = new Map()
    pending = []
    inFlight = batch.length
    const started = performance.now()
    let client: pg.PoolClient | null = null
    try {
      client = await store.pool.connect()
      await client.query('BEGIN')
      for (let i = 0; i < batch.length; i += ROWS_PER_STATEMENT) {
        const chunk = batch.slice(i, i + ROWS_PER_STATEMENT)
        await client.query(auditInsertSql(placeholders(chunk.length, AUDIT_COLUMNS.length)), chunk.flat())
      }
      if (deltas.size > 0) {
        const values = [...deltas.values()].flatMap((u) => USAGE_COLUMNS.map((c) => u[c]))
        await client.query(usageUpsertSql(placeholders(deltas.size, USAGE_COLUMNS.length)), values)
      }
      const outcomes: Array<Awaited<ReturnType<typeof runGroup>>> = []
      for (const p of writes) outcomes.push(await runGroup(client, p.writes))
      await client.query('COMMIT')
      client.release()
      client = null
      inFlight = 0
      writes.forEach((p, i) => {
        const o = outcomes[i]!
        if ('error' in o) p.reject(o.error)
        else p.resolve(o.changes)
      })
      failing = false
      opts.health?.up('writer')
      opts.events.flushed(true, (performance.now() - started) / 1000)
      return batch.length
    } catch (err) {
      // Nothing of it committed: everything goes back, in order, for the next try.
      if (client) {
        await client.query('ROLLBACK').catch(() => {})
        client.release(isConnectionFailure(err) ? (err as Error) : undefined)
      }
      inFlight = 0
      rows = batch.concat(rows)
      for (const u of deltas.values()) addUsageDelta(usage, u)
      pending = writes.concat(pending)
      hold([])
      failing = true
      const message = describeConnectionError(err, store.url)
      if (isConnectionFailure(err)) opts.health?.down('writer', message)
      opts.events.flushed(false, 0, message)
      return 0
    }
  }

  const commit = (): Promise<number> => {
    if (timer) clearTimeout(timer)
    timer = null
    committing ??= (async () => {
      let written = 0
      try {
        // a backlog (after an outage) goes out in several transactions, one after the other
        for (;;) {
          const before = rows.length
          const n = await commitOnce()
          written += n
          if (failing || rows.length === 0 || rows.length >= before) break
        }
      } finally {
        committing = null
        if (rows.length > 0 || usage.size > 0 || pending.length > 0) schedule(failing ? retryMs : flushMs)
      }
      return written
    })()
    return committing
  }

  return {
    async write(more, deltas) {
      hold(more)
      for (const u of deltas) addUsageDelta(usage, u)
      if (rows.length >= batchRows && !failing) void commit()
      else schedule(failing ? retryMs : flushMs)
      return 0
    },
    apply(writes) {
      return new Promise<number>((resolve, reject) => {
        pending.push({ writes, resolve, reject })
        schedule(failing ? retryMs : flushMs)
      })
    },
    async flush() {
      if (committing) await committing
      return commit()
    },
    get buffered() {
      return rows.length + inFlight
    },
    async close() {
      const deadline = Date.now() + 2000
      for (;;) {
        if (committing) await committing
        await commit()
        if ((rows.length === 0 && usage.size === 0 && pending.length === 0) || Date.now() > deadline) break
        await new Promise((r) => setTimeout(r, 50))
      }
      if (timer) clearTimeout(timer)
      timer = null
      for (const p of pending) p.reject(new Error('the store writer closed before it could commit these writes'))
      pending = []
      const lost = rows.length
      rows = []
      return lost
    },
  }
}

/**
 * One caller's statements, in a savepoint: a group that fails for another reason than the connection
 * (a statement the schema refuses) is undone alone, and the batch still commits. A statement marked
 * `skipOnConstraint` that breaks a constraint (its key or provider was deleted meanwhile) is skipped.
 */
async function runGroup(client: pg.PoolClient, writes: WriteStatement[]): Promise<{ changes: number } | { error: Error }> {
  await client.query('SAVEPOINT write_group')
  let changes = 0
  try {
    for (const w of writes) {
      if (w.skipOnConstraint) {
        await client.query('SAVEPOINT write_one')
        try {
          changes += (await client.query(w.sql, w.parameters as unknown[])).rowCount ?? 0
        } catch (err) {
          if (isConnectionFailure(err) || !String((err as { code?: string }).code).startsWith('23')) throw err
          await client.query('ROLLBACK TO SAVEPOINT write_one')
        }
        continue
      }
      changes += (await client.query(w.sql, w.parameters as unknown[])).rowCount ?? 0
    }
    await client.query('RELEASE SAVEPOINT write_group')
    return { changes }
  } catch (err) {
    if (isConnectionFailure(err)) throw err
    await client.query('ROLLBACK TO SAVEPOINT write_group')
    return { error: err instanceof Error ? err : new Error(String(err)) }
  }
}

/** `($1, $2), ($3, $4)` for 2 rows of 2 columns */
function placeholders(rowCount: number, columns: number): string {
  const out: string[] = new Array(rowCount)
  for (let r = 0; r < rowCount; r++) {
    const cells: string[] = new Array(columns)
    for (let c = 0; c < columns; c++) cells[c] = `$${r * columns + c + 1}`
    out[r] = `(${cells.join(', ')})`
  }
  return out.join(', ')
}
