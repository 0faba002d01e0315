// @ts-check
/**
 * The store writer on PostgreSQL: rows, usage deltas and compiled statements are gathered and committed
 * together, one transaction a batch: audit rows by `COPY … FROM STDIN` (one string a batch, where an
 * INSERT's parameters were encoded one by one; docs/performance.md), usage by a multi-row upsert.
 * While the database is unreachable nothing waits on it: rows are held up to `maxBuffered` (the oldest dropped and counted beyond), usage deltas
 * are summed per (day, client, model), which keeps them bounded, and written once it is back.
 *
 * The server runs it on its writer thread (postgres-thread.js), where encoding the rows costs the
 * event loop nothing; tools, tests and the thread's fallback run it in process (postgres-sink.ts).
 * Plain JavaScript so the thread can load it as it is (see audit-thread.js).
 *
 * @typedef {import('./audit-batch.js').WriteStatement} WriteStatement
 * @typedef {import('./repos/usage.js').UsageDelta} UsageDelta
 * @typedef {import('./audit-sink.js').AuditSink} AuditSink
 * @typedef {{ audit: string, usage: string, usageColumns: ReadonlyArray<keyof UsageDelta> }} PostgresStatements
 *   the audit rows' COPY, and the usage upsert with VALUES_LIST where its rows' placeholders go
 * @typedef {{ flushed(ok: boolean, seconds: number, error?: string, rows?: number): void, dropped(rows: number): void }} WriterEvents
 *   `rows`: how many audit rows the transaction committed
 * @typedef {{ up(part: string): void, down(part: string, reason: string): void }} WriterHealth
 * @typedef {object} PostgresWriterOptions
 * @property {string} url for error messages (never shown with its password)
 * @property {PostgresStatements} statements
 * @property {WriterEvents} events
 * @property {WriterHealth} [health]
 * @property {number} [flushMs] commits at least this often (ms) while it holds something; default 100
 * @property {number} [batchRows] and as soon as this many rows wait; default 1000
 * @property {number} [maxBuffered] rows held while the database refuses writes; default 50 000
 * @property {number} [retryMs] how long to wait before trying again after a failed commit; default 1000 ms
 * @typedef {{ writes: WriteStatement[], resolve: (changes: number) => void, reject: (err: Error) => void }} Pending
 */
import { finished } from 'node:stream/promises'
import { addUsageDelta } from './audit-batch.js'
import { copyText, storable } from './copy-text.js'
import { describeConnectionError, isConnectionFailure } from './pg-connection.js'

/** where a statement template's VALUES list goes */
export const VALUES_LIST = '/* values */'
/** rows per transaction, so one batch stays short */
const ROWS_PER_TRANSACTION = 5000

/**
 * @param {import('pg').Pool} pool
 * @param {PostgresWriterOptions} opts
 * @returns {AuditSink}
 */
export function postgresWriter(pool, opts) {
  const flushMs = opts.flushMs ?? 100
  const batchRows = opts.batchRows ?? 1000
  const maxBuffered = opts.maxBuffered ?? 50_000
  const retryMs = opts.retryMs ?? 1000
  const { statements } = opts
  const usageSql = statementFor(statements.usage, statements.usageColumns.length)
  /** @type {unknown[][]} */
  let rows = []
  /** @type {Map<string, UsageDelta>} */
  let usage = new Map()
  /** @type {Pending[]} */
  let pending = []
  let inFlight = 0
  /** @type {Promise<number> | null} */
  let committing = null
  /** @type {NodeJS.Timeout | null} */
  let timer = null
  let failing = false

  /** @param {number} ms */
  const schedule = (ms) => {
    if (timer) return
    timer = setTimeout(() => {
      timer = null
      void commit()
    }, ms)
    timer.unref()
  }

  /** @param {unknown[][]} more */
  const hold = (more) => {
    for (const row of more) rows.push(row)
    if (rows.length > maxBuffered) {
      const dropped = rows.length - maxBuffered
      rows.splice(0, dropped)
      opts.events.dropped(dropped)
    }
  }

  /**
   * One transaction: up to ROWS_PER_TRANSACTION rows, every usage delta and statement held.
   * @returns {Promise<number>}
   */
  const commitOnce = async () => {
    if (rows.length === 0 && usage.size === 0 && pending.length === 0) return 0
    const batch = rows.splice(0, ROWS_PER_TRANSACTION)
    const deltas = usage
    const writes = pending
    usage = new Map()
    pending = []
    inFlight = batch.length
    const started = performance.now()
    /** @type {import('pg').PoolClient | null} */
    let client = null
    try {
      client = await pool.connect()
      await client.query('BEGIN')
      if (batch.length > 0) {
        // its CommonJS exports as `default`: what node and the bundles (esbuild) both give a dynamic import
        const { default: copyStreams } = await import('pg-copy-streams')
        const copy = client.query(copyStreams.from(statements.audit))
        copy.end(copyText(batch))
        await finished(copy)
      }
      if (deltas.size > 0) {
        const values = [...deltas.values()].flatMap((u) => statements.usageColumns.map((c) => storable(u[c])))
        await client.query(usageSql(deltas.size), values)
      }
      /** @type {Array<{ changes: number } | { error: Error }>} */
      const outcomes = []
      for (const p of writes) outcomes.push(await runGroup(client, p.writes))
      await client.query('COMMIT')
      client.release()
      client = null
      inFlight = 0
      writes.forEach((p, i) => {
        const o = /** @type {{ changes: number } | { error: Error }} */ (outcomes[i])
        if ('error' in o) p.reject(o.error)
        else p.resolve(o.changes)
      })
      failing = false
      opts.health?.up('writer')
      opts.events.flushed(true, (performance.now() - started) / 1000, undefined, batch.length)
      return batch.length
    } catch (err) {
      // Nothing of it committed: everything goes back, in order, for the next try.
      if (client) {
        await client.query('ROLLBACK').catch(() => {})
        client.release(isConnectionFailure(err) ? /** @type {Error} */ (err) : undefined)
      }
      inFlight = 0
      rows = batch.concat(rows)
      for (const u of deltas.values()) addUsageDelta(usage, u)
      pending = writes.concat(pending)
      hold([])
      failing = true
      const message = describeConnectionError(err, opts.url)
      if (isConnectionFailure(err)) opts.health?.down('writer', message)
      opts.events.flushed(false, 0, message, 0)
      return 0
    }
  }

  /** @returns {Promise<number>} */
  const commit = () => {
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
      return new Promise((resolve, reject) => {
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
 *
 * @param {import('pg').PoolClient} client
 * @param {WriteStatement[]} writes
 * @returns {Promise<{ changes: number } | { error: Error }>}
 */
async function runGroup(client, writes) {
  await client.query('SAVEPOINT write_group')
  let changes = 0
  try {
    for (const w of writes) {
      if (w.skipOnConstraint) {
        await client.query('SAVEPOINT write_one')
        try {
          changes += (await client.query(w.sql, /** @type {unknown[]} */ (w.parameters))).rowCount ?? 0
        } catch (err) {
          if (isConnectionFailure(err) || !String(/** @type {{ code?: string }} */ (err).code).startsWith('23')) throw err
          await client.query('ROLLBACK TO SAVEPOINT write_one')
        }
        continue
      }
      changes += (await client.query(w.sql, /** @type {unknown[]} */ (w.parameters))).rowCount ?? 0
    }
    await client.query('RELEASE SAVEPOINT write_group')
    return { changes }
  } catch (err) {
    if (isConnectionFailure(err)) throw err
    await client.query('ROLLBACK TO SAVEPOINT write_group')
    return { error: err instanceof Error ? err : new Error(String(err)) }
  }
}

/**
 * The statement with its VALUES list, `($1, $2), ($3, $4)` for 2 rows of 2 columns; the last one made is
 * kept (a batch's usage deltas are mostly the same few rows).
 *
 * @param {string} template
 * @param {number} columns
 * @returns {(rowCount: number) => string}
 */
function statementFor(template, columns) {
  let last = { rowCount: -1, sql: '' }
  return (rowCount) => {
    if (rowCount === last.rowCount) return last.sql
    /** @type {string[]} */
    const out = new Array(rowCount)
    for (let r = 0; r < rowCount; r++) {
      /** @type {string[]} */
      const cells = new Array(columns)
      for (let c = 0; c < columns; c++) cells[c] = `$${r * columns + c + 1}`
      out[r] = `(${cells.join(', ')})`
    }
    // a function, so the `$n` in the list are not read as replacement patterns
    last = { rowCount, sql: template.replace(VALUES_LIST, () => out.join(', ')) }
    return last.sql
  }
}
