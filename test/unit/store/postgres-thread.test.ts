/**
 * The server's PostgreSQL writer on its thread, against the machine's PostgreSQL: what goes through the
 * thread arrives and nothing of it on the main thread's pool; handed-over statements are answered; an
 * outage is ridden out within the bound and reported; close writes what is held; and a thread that
 * cannot start or dies hands over to the in-process writer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { AuditSinkEvents } from '../../../src/store/audit-sink.js'
import type { PostgresStore } from '../../../src/store/db.js'
import { postgresThreadSink } from '../../../src/store/postgres-sink.js'
import { auditRowValues, type NewAuditRow } from '../../../src/store/repos/audit.js'
import { quotaUsageStatements } from '../../../src/store/repos/quotas.js'
import { queryUsage } from '../../../src/store/repos/usage.js'
import { StoreHealth } from '../../../src/store/store-health.js'
import { serverStoreWriter } from '../../../src/store/store-writer.js'
import { openBackendStore, openStoreBehindRelay } from '../../helpers/postgres.js'
import { eventually } from '../../helpers/proxy.js'

/** the thread's script: the real one unless a test swaps it for one that fails */
const thread = vi.hoisted(() => ({ script: null as string | URL | null }))
vi.mock('../../../src/store/audit-thread-file.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/store/audit-thread-file.js')>()
  return { auditThreadFile: () => thread.script ?? real.auditThreadFile() }
})

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  thread.script = null
  for (const c of cleanups.splice(0).reverse()) await c()
})

const row = (i: number) =>
  auditRowValues({
    request_id: `req-${i}`, ts: new Date(Date.UTC(2026, 11, 7) + i).toISOString(), method: 'POST', path: '/v1/chat/completions', client: 'app', ip: '127.0.0.1',
    model: 'm', provider: 'mock', upstream_model: 'm', key_label: 'k', stream: 0, status: 200, latency_ms: 1.5, upstream_ms: 1, ttft_ms: null,
    prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: 0.25, attempts: 1, fallback: null, error_code: null, error_message: null,
    request_body: null, response_body: null, cache: null, saved_usd: null, request_body_key: null, request_body_bytes: null, response_body_key: null, response_body_bytes: null, capture_dropped: null, trace_id: null,
  } satisfies NewAuditRow)
const usage = { day: '2026-12-07', client: 'app', model: 'm', requests: 1, errors: 0, prompt_tokens: 3, completion_tokens: 4, cost_usd: 0.25, cache_hits: 0, saved_usd: 0 }

async function postgresStore(): Promise<PostgresStore> {
  const o = await openBackendStore('postgres')
  cleanups.push(() => o.close())
  if (o.store.kind !== 'postgres') throw new Error('expected a PostgreSQL store')
  return o.store
}

/** Counts what the store's own pool (the main thread's) is asked to do. */
function watchPool(store: PostgresStore): () => number {
  const connect = vi.spyOn(store.pool, 'connect')
  const query = vi.spyOn(store.pool, 'query')
  cleanups.push(() => {
    connect.mockRestore()
    query.mockRestore()
  })
  return () => connect.mock.calls.length + query.mock.calls.length
}

const requestIds = async (store: PostgresStore) => (await store.db.selectFrom('audit').select('request_id').orderBy('id').execute()).map((r) => r.request_id)
const count = async (store: PostgresStore) => Number((await store.db.selectFrom('audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)

function recorder() {
  const seen = { dropped: 0, failures: [] as string[], committed: 0 }
  const events: AuditSinkEvents = {
    flushed: (ok, _seconds, error) => (ok ? seen.committed++ : seen.failures.push(error ?? '')),
    dropped: (n) => (seen.dropped += n),
  }
  return { seen, events }
}

describe('the server\'s PostgreSQL writer thread', () => {
  it('commits rows, usage and statements on its own connection, none on the main thread\'s pool', async () => {
    const store = await postgresStore()
    const mainPoolCalls = watchPool(store)
    const { seen, events } = recorder()
    const sink = serverStoreWriter(store, events, { flushMs: 60_000, health: new StoreHealth(), onFallback: (reason) => expect.fail(`writer thread failed: ${reason}`) })
    cleanups.push(async () => void (await sink.close()))

    await sink.write(Array.from({ length: 1500 }, (_, i) => row(i)), [usage, usage])
    await sink.write([], [{ ...usage, errors: 1 }])
    const quota = sink.apply(quotaUsageStatements(store.db, [{ clientId: 1, period: 'day', periodKey: '2026-12-07', tokens: 10 }]))
    const refused = expect(sink.apply([{ sql: 'INSERT INTO no_such_table VALUES (1)', parameters: [] }])).rejects.toThrow(/no_such_table/)
    await sink.flush()
    expect(await quota).toBe(1)
    await refused
    expect(sink.buffered).toBe(0)
    expect(seen.committed).toBeGreaterThan(0)
    // Had the thread not started, or the work run here, the store's pool would have been asked.
    expect(mainPoolCalls()).toBe(0)

    expect(await count(store)).toBe(1500)
    expect(await queryUsage(store.db, { by: 'client' })).toEqual([{ key: 'app', requests: 3, errors: 1, promptTokens: 9, completionTokens: 12, costUsd: 0.75, cacheHits: 0, savedUsd: 0 }])
    expect(await store.db.selectFrom('quota_usage').select('tokens').executeTakeFirst()).toEqual({ tokens: 10 })
  })

  it('holds rows through an outage up to its bound, drops the oldest past it, reports the store down and up, and writes the rest once it is back', async () => {
    const { store, relay, close } = await openStoreBehindRelay()
    cleanups.push(close)
    const mainPoolCalls = watchPool(store)
    const { seen, events } = recorder()
    const health = new StoreHealth()
    const sink = postgresThreadSink(store, { events, health, maxBuffered: 5, retryMs: 50, onFallback: (reason) => expect.fail(`writer thread failed: ${reason}`) })
    cleanups.push(async () => void (await sink.close()))

    relay.cut()
    for (let i = 0; i < 8; i++) await sink.write([row(i)], [usage])
    expect(await sink.flush()).toBe(0)
    expect(seen.dropped).toBe(3)
    expect(sink.buffered).toBe(5)
    expect(health.ok).toBe(false)
    expect(health.detail).toMatch(/^writer: .*PostgreSQL at 127\.0\.0\.1:\d+/)
    expect(seen.failures.at(-1)).toMatch(/PostgreSQL at 127\.0\.0\.1/)

    relay.restore()
    await eventually(() => sink.flush(), () => sink.buffered === 0, 10_000)
    expect(health.ok).toBe(true)
    expect(mainPoolCalls()).toBe(0)
    expect(await requestIds(store)).toEqual(['req-3', 'req-4', 'req-5', 'req-6', 'req-7'])
    expect(await queryUsage(store.db, { by: 'client' })).toEqual([{ key: 'app', requests: 8, errors: 0, promptTokens: 24, completionTokens: 32, costUsd: 2, cacheHits: 0, savedUsd: 0 }])
  })

  it('writes what it holds when closed', async () => {
    const store = await postgresStore()
    const { events } = recorder()
    const sink = postgresThreadSink(store, { events, flushMs: 60_000, onFallback: (reason) => expect.fail(`writer thread failed: ${reason}`) })
    await sink.write([row(1), row(2)], [usage])
    const quota = sink.apply(quotaUsageStatements(store.db, [{ clientId: 1, period: 'day', periodKey: '2026-12-07', tokens: 7 }]))
    expect(await sink.close()).toBe(0)
    expect(await quota).toBe(1)
    expect(await requestIds(store)).toEqual(['req-1', 'req-2'])
    expect((await queryUsage(store.db, { by: 'client' }))[0]?.requests).toBe(1)
  })

  it('falls back to the main thread\'s writer when the thread cannot start, and loses nothing', async () => {
    thread.script = '/nonexistent/audit-thread.js'
    const store = await postgresStore()
    const { seen, events } = recorder()
    const reasons: Array<[string, number]> = []
    const sink = postgresThreadSink(store, { events, flushMs: 60_000, onFallback: (reason, lost) => reasons.push([reason, lost]) })
    cleanups.push(async () => void (await sink.close()))
    // taken before the thread has failed: they wait for it, then go to the fallback
    await sink.write([row(1), row(2)], [usage])
    const quota = sink.apply(quotaUsageStatements(store.db, [{ clientId: 1, period: 'day', periodKey: '2026-12-07', tokens: 7 }]))
    expect(await sink.flush()).toBe(2)
    expect(await quota).toBe(1)
    expect(reasons).toEqual([[expect.stringMatching(/nonexistent|Cannot find/), 0]])
    expect(seen.dropped).toBe(0)
    expect(await requestIds(store)).toEqual(['req-1', 'req-2'])
  })

  it('falls back when the thread dies: what it held is counted dropped, statements it had not committed are committed', async () => {
    // a thread that says it is ready, and exits at the first batch
    thread.script = new URL(`data:text/javascript,${encodeURIComponent("import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ ready: true }); parentPort.on('message', () => process.exit(3))")}`)
    const store = await postgresStore()
    const { seen, events } = recorder()
    const reasons: Array<[string, number]> = []
    const sink = postgresThreadSink(store, { events, flushMs: 60_000, onFallback: (reason, lost) => reasons.push([reason, lost]) })
    cleanups.push(async () => void (await sink.close()))
    await sink.write([row(1), row(2)], [])
    const quota = sink.apply(quotaUsageStatements(store.db, [{ clientId: 1, period: 'day', periodKey: '2026-12-07', tokens: 7 }]))
    await eventually(() => reasons.length, (n) => n > 0)
    expect(reasons).toEqual([['exited with code 3', 2]])
    expect(seen.dropped).toBe(2)
    await sink.write([row(3)], [usage])
    expect(await sink.flush()).toBe(1)
    expect(await quota).toBe(1)
    expect(await requestIds(store)).toEqual(['req-3'])
  })
})
