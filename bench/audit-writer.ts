/**
 * The server's store writer (serverStoreWriter: a thread of its own on either backend) at its sustained
 * rate: audit rows (with usage deltas) handed over in batches of 1 000 as fast as the writer takes
 * them, until N rows are committed (`--batch`: rows per hand-over; the server hands over a turn's worth,
 * a few dozen, so its commits vary in size). Prints rows/s, and CPU per 1 000 rows of the whole process and of
 * the main thread alone (what requests would wait behind; Linux only), both including making the rows,
 * whose own cost is printed first. PostgreSQL's server is another process, not counted.
 *   tsx bench/audit-writer.ts [--rows 100000] [--batch 1000] [--database-url postgres://…]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import type { AuditSink } from '../src/store/audit-sink.js'
import { openStore, type Store } from '../src/store/db.js'
import { auditRowValues } from '../src/store/repos/audit.js'
import { serverStoreWriter } from '../src/store/store-writer.js'

const { values: flags } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, batch: { type: 'string', default: '1000' }, 'database-url': { type: 'string' } } })
const ROWS = Number(flags.rows)
const BATCH = Number(flags.batch)
const MASTER_KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='
const events = { flushed: () => {}, dropped: (n: number) => console.error(`dropped ${n}`) }
/** the server's writer, saying so if its thread failed and the main thread wrote instead */
const serverWriter = (store: Store) => serverStoreWriter(store, events, { onFallback: (reason) => console.error(`the writer thread failed (${reason}): the main thread wrote the rest`) })

/** CPU time of a thread in ms, from /proc (ticks of 10 ms), or null where there is none */
function threadCpuMs(task = '/proc/thread-self'): number | null {
  try {
    const stat = readFileSync(`${task}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return null
  }
}

/** CPU time of the writer thread (named proxy-audit by audit-thread.js), or null when there is none */
function writerThreadCpuMs(): number | null {
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'proxy-audit') return threadCpuMs(`/proc/self/task/${tid}`)
    }
  } catch {
    // not Linux
  }
  return null
}

const row = (i: number) =>
  auditRowValues({
    request_id: `req-${i}`, ts: new Date(Date.UTC(2026, 11, 1) + i).toISOString(), method: 'POST', path: '/v1/chat/completions', client: `client-${i % 20}`, ip: '127.0.0.1',
    model: 'gpt-4o-mini', provider: 'openai', upstream_model: 'gpt-4o-mini', key_label: 'main', stream: i % 2, status: 200, latency_ms: 12.5, upstream_ms: 10.25, ttft_ms: null,
    prompt_tokens: 30, completion_tokens: 40, total_tokens: 70, cost_usd: 0.000123, attempts: 1, fallback: null, error_code: null, error_message: null, request_body: null, response_body: null, cache: null, saved_usd: null, request_body_key: null, request_body_bytes: null, response_body_key: null, response_body_bytes: null, capture_dropped: null, trace_id: null,
  })

async function measure(name: string, store: Store, sink: AuditSink): Promise<void> {
  const count = async () => Number((await store.db.selectFrom('audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
  const cpu = process.cpuUsage()
  const mainCpu = threadCpuMs()
  const started = performance.now()
  for (let i = 0; i < ROWS; i += BATCH) {
    const rows = Array.from({ length: Math.min(BATCH, ROWS - i) }, (_, j) => row(i + j))
    await sink.write(rows, [{ day: '2026-12-01', client: `client-${i % 20}`, model: 'gpt-4o-mini', requests: rows.length, errors: 0, prompt_tokens: 30 * rows.length, completion_tokens: 40 * rows.length, cost_usd: 0.1, cache_hits: 0, saved_usd: 0 }])
    // hand over no faster than it commits: at most 20 000 rows waiting
    while (sink.buffered > 20_000) await new Promise((r) => setTimeout(r, 5))
  }
  await sink.flush()
  // read before close(), which ends the thread
  const writerUsed = writerThreadCpuMs()
  await sink.close()
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  const mainUsed = mainCpu === null ? null : (threadCpuMs() ?? 0) - mainCpu
  const written = await count()
  const perThousand = (ms: number) => `${(ms / (written / 1000)).toFixed(1)} ms`
  console.log(
    `${name}: ${written} rows in ${seconds.toFixed(2)} s = ${Math.round(written / seconds)} rows/s; CPU per 1 000 rows: this process ${perThousand((used.user + used.system) / 1000)}, ` +
      `its main thread ${mainUsed === null ? 'n/a' : perThousand(mainUsed)}, the writer thread ${writerUsed === null ? 'n/a' : perThousand(writerUsed)}`,
  )
}

/** What making the rows costs the main thread alone, included in the figures above. */
function rowsCost(): void {
  const cpu = process.cpuUsage()
  let kept = 0
  for (let i = 0; i < ROWS; i += BATCH) kept += Array.from({ length: Math.min(BATCH, ROWS - i) }, (_, j) => row(i + j)).length
  const used = process.cpuUsage(cpu)
  console.log(`making the rows: ${((used.user + used.system) / 1000 / (kept / 1000)).toFixed(1)} ms per 1 000 rows`)
}

const dir = mkdtempSync(path.join(tmpdir(), 'proxy-audit-bench-'))
try {
  rowsCost()
  const env = { PROXY_MASTER_KEY: MASTER_KEY, PROXY_KEYCHAIN: 'off' }
  const sqlite = await openStore({ dataDir: path.join(dir, 'sqlite'), env, keychain: null })
  await measure('sqlite', sqlite, serverWriter(sqlite))
  await sqlite.close()
  if (flags['database-url']) {
    const pg = await openStore({ dataDir: path.join(dir, 'pg'), databaseUrl: flags['database-url'], env, keychain: null })
    if (pg.kind !== 'postgres') throw new Error('not a PostgreSQL store')
    await pg.db.deleteFrom('audit').execute()
    await measure('postgres', pg, serverWriter(pg))
    await pg.close()
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
