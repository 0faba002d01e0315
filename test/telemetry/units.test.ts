import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { SQLite } from '../../src/store/sqlite-driver.js'
import pino from 'pino'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openStore, type SqliteStore } from '../../src/store/db.js'
import { costUsd, priceFor, tablePrice } from '../../src/core/prices.js'
import { loadSnapshot, type ConfigSnapshot } from '../../src/store/snapshot.js'
import { circuitStateStatements } from '../../src/store/repos/circuits.js'
import { inlineAuditSink, threadAuditSink, type AuditSinkEvents } from '../../src/store/audit-sink.js'
import { AuditWriter, toAuditRow, upstreamMs } from '../../src/telemetry/audit-writer.js'
import { BodyCapture, truncateUtf8 } from '../../src/telemetry/capture.js'
import { readHealth } from '../../src/telemetry/gateway-health.js'
import { startRetention } from '../../src/telemetry/retention.js'
import { createLogger, flushLogger, lineWriter, setLogScrubber, silentLogger } from '../../src/telemetry/logger.js'
import { createMetrics, fallbackKind } from '../../src/telemetry/metrics.js'
import type { RequestRecord } from '../../src/telemetry/request-record.js'
import { metricsNeedAdmin, resolveObservability } from '../../src/telemetry/settings.js'
import { createTelemetry } from '../../src/telemetry/telemetry.js'
import type { LiveStats } from '../../src/telemetry/live-stats.js'
import { cli, tempDataDir, testEnv } from '../helpers/proxy.js'
import { parseScrape } from './scrape.js'
import { snapshot as configWith } from '../limits/fixtures.js'

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    requestId: 'req_1',
    method: 'POST',
    path: '/v1/chat/completions',
    status: 200,
    ms: 100,
    client: 'app',
    model: 'gpt-4o-mini',
    stream: false,
    provider: 'mock',
    upstreamModel: 'mock-small',
    key: null,
    attempts: [{ provider: 'mock', upstreamModel: 'mock-small', key: null, ms: 80 }],
    usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
    error: null,
    ip: '127.0.0.1',
    endedAt: Date.parse('2026-03-01T12:00:00.100Z'),
    ...over,
  }
}

describe('the price table', () => {
  it('matches dated and vendor-prefixed upstream names to the longest entry', () => {
    expect(tablePrice('gpt-4o-mini-2024-07-18')).toMatchObject({ input: 0.15, output: 0.6 })
    expect(tablePrice('gpt-4o-2024-08-06')).toMatchObject({ input: 2.5, output: 10 })
    expect(tablePrice('openai/gpt-4.1-mini')).toMatchObject({ input: 0.4, output: 1.6 })
    expect(tablePrice('o3-mini-2025-01-31')).toMatchObject({ input: 1.1, output: 4.4 })
    expect(tablePrice('claude-sonnet-4-5-20250929')).toMatchObject({ input: 3, output: 15 })
    expect(tablePrice('claude-opus-4-1-20250805')).toMatchObject({ input: 15, output: 75 })
    expect(tablePrice('claude-opus-4-20250514')).toMatchObject({ input: 15, output: 75 })
    expect(tablePrice('claude-haiku-4-5-20251001')).toMatchObject({ input: 1, output: 5 })
    expect(tablePrice('text-embedding-3-small')).toMatchObject({ input: 0.02, output: 0 })
    expect(tablePrice('mock-gpt-4o')).toBeNull()
    expect(tablePrice('gpt-4ox')).toBeNull()
  })

  it('lets a provider setting override either price', () => {
    expect(priceFor('gpt-4o', { price_in: 1 })).toEqual({ input: 1, output: 10 })
    expect(priceFor('llama3', { price_in: 0.2, price_out: 0.4 })).toEqual({ input: 0.2, output: 0.4 })
    expect(priceFor('llama3', { price_out: 'free' })).toBeNull()
    expect(costUsd(priceFor('gpt-4o-mini', {}), { prompt_tokens: 1_000_000, completion_tokens: 1_000_000 })).toBeCloseTo(0.75, 12)
    expect(costUsd(null, { prompt_tokens: 10, completion_tokens: 10 })).toBe(0)
  })
})

describe('content capture', () => {
  it('truncates on a character boundary and says so', () => {
    const text = 'é'.repeat(100) // 200 bytes
    const cut = truncateUtf8(text, 51)
    expect(cut.startsWith('é'.repeat(25) + '…[truncated by proxy: 150 of 200 bytes cut]')).toBe(true)
    expect(truncateUtf8('short', 51)).toBe('short')
  })

  it('reassembles a stream: text per choice, tool calls and finish reasons', () => {
    const c = new BodyCapture({ model: 'm' }, 1000)
    c.chunk({ id: 'x', model: 'up', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] })
    c.chunk({ choices: [{ index: 0, delta: { content: 'Hel' } }, { index: 1, delta: { content: 'B' } }] })
    c.chunk({ choices: [{ index: 0, delta: { content: 'lo', tool_calls: [{ index: 0, id: 'call_1', function: { name: 'get', arguments: '{"a"' } }] } }] })
    c.chunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }, finish_reason: 'tool_calls' }] })
    c.chunk({ choices: [], usage: { prompt_tokens: 1 } })
    expect(JSON.parse(c.responseText()!)).toEqual({
      stream: true,
      id: 'x',
      model: 'up',
      choices: [
        { index: 0, content: 'Hello', finish_reason: 'tool_calls', tool_calls: [{ id: 'call_1', name: 'get', arguments: '{"a":1}' }] },
        { index: 1, content: 'B', finish_reason: null },
      ],
    })
    expect(c.requestText()).toBe('{"model":"m"}')
  })

  it('bounds a long stream while it grows, and summarises embeddings', () => {
    const c = new BodyCapture({}, 10)
    for (let i = 0; i < 100; i++) c.chunk({ choices: [{ index: 0, text: 'abcdef' }] })
    const out = c.responseText()!
    expect(out).toContain('…[truncated by proxy')
    const e = new BodyCapture({}, 1000)
    e.response = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage: { prompt_tokens: 1 } }
    expect(JSON.parse(e.responseText()!).data).toBe('[1 embedding(s), 2 dimensions, omitted]')
  })
})

describe('the audit row', () => {
  const snapshot = { providers: new Map([['mock', { settings: {} }]]), routes: new Map(), clientsByHash: new Map() } as unknown as ConfigSnapshot

  it('times the request from its start and names the fallback', () => {
    const row = toAuditRow(
      record({
        key: 'b',
        attempts: [
          { provider: 'mock', upstreamModel: 'mock-small', key: 'a', ms: 10, error: { status: 429, code: 'rate_limit_exceeded', message: 'slow down' } },
          { provider: 'mock', upstreamModel: 'mock-small', key: 'b', ms: 50 },
        ],
      }),
      snapshot,
    )
    expect(row).toMatchObject({ ts: '2026-03-01T12:00:00.000Z', attempts: 2, fallback: 'key', upstream_ms: 60, cost_usd: 0, request_body: null })
  })

  it('keeps an upstream\'s odd token counts to what an integer column holds', () => {
    const usage = { prompt_tokens: 2.6, completion_tokens: -1, total_tokens: 1e30 }
    expect(toAuditRow(record({ usage }), snapshot)).toMatchObject({ prompt_tokens: 3, completion_tokens: null, total_tokens: Number.MAX_SAFE_INTEGER })
    expect(toAuditRow(record({ usage: { prompt_tokens: Number.NaN, completion_tokens: 5, total_tokens: 5 } }), snapshot)).toMatchObject({ prompt_tokens: null, completion_tokens: 5 })
  })

  it('counts a stream\'s upstream time until its end, and knows retries from fallbacks', () => {
    expect(upstreamMs(record({ stream: true, ms: 1000, servedMs: 200, attempts: [{ provider: 'p', upstreamModel: 'm', key: null, ms: 150 }] }))).toBe(950)
    expect(upstreamMs(record({ attempts: [] }))).toBeNull()
    const a = (provider: string, key: string | null, upstreamModel = 'm') => ({ provider, upstreamModel, key, ms: 1 })
    expect(fallbackKind({ attempts: [a('p', 'k')] })).toBeNull()
    expect(fallbackKind({ attempts: [a('p', 'k'), a('p', 'k')] })).toBe('retry')
    expect(fallbackKind({ attempts: [a('p', 'k'), a('p', 'j')] })).toBe('key')
    expect(fallbackKind({ attempts: [a('p', 'k'), a('q', null)] })).toBe('provider')
    expect(fallbackKind({ attempts: [a('p', 'k'), { ...a('q', null), fallback: 'global' as const }] })).toBe('global')
  })
})

// The thread's own timer is set far out, so the tests decide when it commits (flush()).
const sinks = {
  'on the audit thread': (store: SqliteStore) => (events: AuditSinkEvents) =>
    threadAuditSink({ file: store.file, events, flushMs: 60_000, fallback: inlineAuditSink(store.sqlite, events), onFallback: (reason) => expect.fail(`audit thread failed: ${reason}`) }),
  'inline on the shared connection': (store: SqliteStore) => (events: AuditSinkEvents) => inlineAuditSink(store.sqlite, events),
}

describe.each(Object.entries(sinks))('the audit writer, %s', (_name, makeSink) => {
  let data: ReturnType<typeof tempDataDir>
  let store: SqliteStore
  let snapshot: ConfigSnapshot

  beforeEach(async () => {
    data = tempDataDir()
    await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])
    await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])
    store = await openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })
    snapshot = await loadSnapshot(store)
  })
  afterEach(async () => {
    await store.close()
    data.cleanup()
  })

  const count = (table: 'audit' | 'usage') => (store.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

  it('writes rows and usage in one batch, and everything left on close', async () => {
    const writer = new AuditWriter({ store, config: () => snapshot, logger: silentLogger(), flushMs: 60_000, sink: makeSink(store) })
    writer.add(record({ requestId: 'a' }))
    writer.add(record({ requestId: 'b', status: 502, usage: null, error: { type: 'upstream_error', code: 'upstream_unavailable', message: 'down' } }))
    expect(await writer.flush()).toBe(2)
    writer.add(record({ requestId: 'c' }))
    expect(count('audit')).toBe(2)
    await writer.close()
    expect(count('audit')).toBe(3)
    const usage = store.sqlite.prepare('SELECT * FROM usage').all()
    expect(usage).toEqual([{ day: '2026-03-01', client: 'app', model: 'gpt-4o-mini', requests: 3, errors: 1, prompt_tokens: 20, completion_tokens: 40, cost_usd: 0, cache_hits: 0, saved_usd: 0 }])
    writer.add(record({ requestId: 'late' }))
    expect(writer.size).toBe(0)
  })

  it('commits handed-over statements in order with the next batch; skips a deleted key\'s circuit; refuses a broken one without holding up rows', async () => {
    const writer = new AuditWriter({ store, config: () => snapshot, logger: silentLogger(), flushMs: 60_000, sink: makeSink(store) })
    const providerId = (store.sqlite.prepare("SELECT id FROM providers WHERE name = 'mock'").pluck().get() as number)
    const circuit = (scope: string, pid: number, state: 'open' | 'closed') => ({ scope, providerId: pid, keyId: null, state, openUntil: null, at: Date.UTC(2026, 2, 1) })
    const committed: string[] = []
    const first = writer.apply(circuitStateStatements(store.db, [circuit('p:x', providerId, 'open'), circuit('p:gone', providerId + 99, 'open')])).then((n) => committed.push(`first:${n}`))
    const second = writer.apply(circuitStateStatements(store.db, [circuit('p:x', providerId, 'closed')])).then((n) => committed.push(`second:${n}`))
    const broken = writer.apply([{ sql: 'INSERT INTO no_such_table VALUES (1)', parameters: [] }])
    const refused = expect(broken).rejects.toThrow(/no such table/)
    writer.add(record({ requestId: 'with-statements' }))
    await writer.flush()
    await Promise.all([first, second, refused])
    // resolved with the rows each changed: the deleted provider's circuit was skipped
    expect(committed).toEqual(['first:1', 'second:1'])
    expect(store.sqlite.prepare('SELECT scope, state FROM circuit_states').all()).toEqual([{ scope: 'p:x', state: 'closed' }])
    expect(count('audit')).toBe(1)
    await writer.close()
  })

  it('keeps rows while the store is locked, drops the oldest past the bound, and catches up', async () => {
    const registry = new Registry()
    const metrics = createMetrics(registry, { config: () => snapshot, processMetrics: false })
    const writer = new AuditWriter({ store, config: () => snapshot, logger: silentLogger(), metrics, flushMs: 60_000, maxBuffered: 5, sink: makeSink(store) })
    const other = new SQLite(store.file)
    other.exec('BEGIN IMMEDIATE')
    try {
      for (let i = 0; i < 8; i++) writer.add(record({ requestId: `r${i}` }))
      const started = Date.now()
      expect(await writer.flush()).toBe(0)
      expect(Date.now() - started).toBeLessThan(1000) // a short busy wait, not the connection's 5 s
      expect(writer.size).toBe(5)
      expect(writer.dropped).toBe(3)
    } finally {
      other.exec('ROLLBACK')
      other.close()
    }
    expect(await writer.flush()).toBe(5)
    const ids = (store.sqlite.prepare('SELECT request_id FROM audit ORDER BY id').all() as Array<{ request_id: string }>).map((r) => r.request_id)
    expect(ids).toEqual(['r3', 'r4', 'r5', 'r6', 'r7'])
    const m = parseScrape(await registry.metrics())
    expect(m.value('proxy_audit_dropped_total')).toBe(3)
    expect(m.value('proxy_audit_flushes_total', { result: 'error' })).toBe(1)
    expect(m.value('proxy_audit_flushes_total', { result: 'ok' })).toBe(1)
    await writer.close()
  })
})

describe('the audit thread', () => {
  let data: ReturnType<typeof tempDataDir>
  let store: SqliteStore
  let snapshot: ConfigSnapshot

  beforeEach(async () => {
    data = tempDataDir()
    await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])
    store = await openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })
    snapshot = await loadSnapshot(store)
  })
  afterEach(async () => {
    await store.close()
    data.cleanup()
  })

  const ids = () => (store.sqlite.prepare('SELECT request_id FROM audit ORDER BY id').all() as Array<{ request_id: string }>).map((r) => r.request_id)

  it('holds at most maxBuffered rows: past that, new rows are dropped and counted, and their usage still goes', async () => {
    const registry = new Registry()
    const metrics = createMetrics(registry, { config: () => snapshot, processMetrics: false })
    const writer = new AuditWriter({
      store,
      config: () => snapshot,
      logger: silentLogger(),
      metrics,
      flushMs: 60_000,
      flushRows: 3,
      maxBuffered: 1000,
      // the thread commits only on flush(): until then every row handed over is held
      sink: (events) => threadAuditSink({ file: store.file, events, flushMs: 60_000, maxBuffered: 4, fallback: inlineAuditSink(store.sqlite, events), onFallback: (r) => expect.fail(`audit thread failed: ${r}`) }),
    })
    for (let i = 0; i < 3; i++) writer.add(record({ requestId: `kept${i}` }))
    await new Promise((r) => setImmediate(r))
    for (let i = 0; i < 3; i++) writer.add(record({ requestId: `over${i}` }))
    await new Promise((r) => setImmediate(r))
    expect(writer.dropped).toBe(3)
    await writer.flush()
    expect(ids()).toEqual(['kept0', 'kept1', 'kept2'])
    expect(store.sqlite.prepare('SELECT requests FROM usage').pluck().all()).toEqual([6])
    expect(parseScrape(await registry.metrics()).value('proxy_audit_dropped_total')).toBe(3)
    await writer.close()
  })

  it('falls back to the shared connection when the thread cannot open the store, and loses no row', async () => {
    const reasons: string[] = []
    const writer = new AuditWriter({
      store, config: () => snapshot, logger: silentLogger(), flushMs: 60_000,
      sink: (events) => threadAuditSink({ file: path.join(data.dir, 'missing-dir', 'store.db'), events, fallback: inlineAuditSink(store.sqlite, events), onFallback: (r) => reasons.push(r) }),
    })
    // The first batch is taken before the thread has failed: it waits for the thread, then goes to the fallback.
    for (let i = 0; i < 3; i++) writer.add(record({ requestId: `f${i}` }))
    await writer.flush()
    expect(ids()).toEqual(['f0', 'f1', 'f2'])
    expect(reasons).toHaveLength(1)
    expect(reasons[0]).toMatch(/unable to open database|directory does not exist/i)
    writer.add(record({ requestId: 'f3' }))
    expect(await writer.flush()).toBe(1)
    await writer.close()
    expect(ids()).toEqual(['f0', 'f1', 'f2', 'f3'])
    expect(writer.dropped).toBe(0)
  })
})

describe('automatic retention', () => {
  it('deletes rows older than the setting, in chunks, and keeps the rest', async () => {
    const data = tempDataDir()
    const store = await openStore({ dataDir: data.dir, env: testEnv(data.dir), keychain: null })
    try {
      const snapshot = await loadSnapshot(store)
      const writer = new AuditWriter({ store, config: () => snapshot, logger: silentLogger(), flushMs: 60_000, batchRows: 10_000 })
      const day = 86_400_000
      for (let i = 0; i < 4500; i++) writer.add(record({ requestId: `old${i}`, endedAt: Date.now() - 40 * day }))
      for (let i = 0; i < 3; i++) writer.add(record({ requestId: `new${i}`, endedAt: Date.now() - 2 * day }))
      await writer.flush()
      const retention = startRetention({ apply: (writes) => writer.apply(writes), db: store.db, days: 30, logger: silentLogger(), firstRunMs: 60_000 })
      expect(await retention.run()).toBe(4500)
      retention.stop()
      await writer.close()
      const left = (store.sqlite.prepare('SELECT request_id FROM audit ORDER BY id').all() as Array<{ request_id: string }>).map((r) => r.request_id)
      expect(left).toEqual(['new0', 'new1', 'new2'])
      // usage is an aggregate and stays
      expect((store.sqlite.prepare('SELECT sum(requests) AS n FROM usage').get() as { n: number }).n).toBe(4503)
    } finally {
      await store.close()
      data.cleanup()
    }
  })
})

describe('gateway health in metrics', () => {
  const snapshot = {
    routes: new Map([['gpt-4o', {}]]),
    providers: new Map([['openai', { name: 'openai', keys: [{ label: 'main' }, { label: 'backup' }] }]]),
    clientsByHash: new Map(),
  } as unknown as ConfigSnapshot

  it('reads circuit and key state at scrape time and counts change events, with bounded labels', async () => {
    const registry = new Registry()
    const metrics = createMetrics(registry, { config: () => snapshot, processMetrics: false })
    let empty = parseScrape(await registry.metrics())
    expect(empty.samples('proxy_circuit_state')).toEqual([])
    metrics.watchGateway({
      health: () => ({
        providers: [
          { name: 'openai', circuit: { state: 'open' }, keys: [{ label: 'main', state: 'ok' }, { label: 'backup', state: 'cooling' }, { label: 'sk-live-raw', state: 'ok' }] },
          { name: 'ghost-provider', circuit: 'half_open', keys: [] },
        ],
      }),
    })
    metrics.gatewayEvents.circuit({ provider: 'openai', key: null, from: 'closed', to: 'open' })
    metrics.gatewayEvents.keyHealth({ provider: 'openai', key: 'backup', from: 'ok', to: 'cooling' })
    const m = parseScrape(await registry.metrics())
    expect(m.value('proxy_circuit_state', { provider: 'openai', key: '' })).toBe(2)
    expect(m.value('proxy_circuit_state', { provider: 'unknown', key: '' })).toBe(1)
    expect(m.value('proxy_key_healthy', { provider: 'openai', key: 'main' })).toBe(1)
    expect(m.value('proxy_key_healthy', { provider: 'openai', key: 'backup' })).toBe(0)
    expect(m.value('proxy_key_healthy', { provider: 'openai', key: 'unknown' })).toBe(1)
    expect(m.value('proxy_circuit_transitions_total', { provider: 'openai', key: '', to: 'open' })).toBe(1)
    expect(m.value('proxy_key_health_changes_total', { provider: 'openai', key: 'backup', to: 'cooling' })).toBe(1)
    expect(m.text).not.toContain('sk-live-raw')
    expect(m.text).not.toContain('ghost-provider')
    // A health() that throws or returns nonsense reads as nothing, never a failed scrape.
    metrics.watchGateway({ health: () => { throw new Error('boom') } })
    empty = parseScrape(await registry.metrics())
    expect(empty.samples('proxy_key_healthy')).toEqual([])
    expect(readHealth({ circuits: [{ provider: 'p', key: 'k', state: 'HALF-OPEN' }], keys: [{ provider: 'p', label: 'k', healthy: false }] })).toEqual({
      circuits: [{ provider: 'p', key: 'k', state: 'half_open' }],
      keys: [{ provider: 'p', key: 'k', healthy: false }],
    })
    expect(readHealth('nonsense')).toEqual({ circuits: [], keys: [] })
  })
})

describe('settings', () => {
  it('reads PROXY_* variables under flags, and refuses nonsense', () => {
    expect(resolveObservability({}, {})).toMatchObject({ captureAll: false, captureMaxBytes: 32768, auditRetentionDays: null, metricsAuth: 'auto', logFormat: 'auto' })
    expect(resolveObservability({}, { PROXY_CAPTURE: 'on', PROXY_CAPTURE_MAX_BYTES: '1024', PROXY_AUDIT_RETENTION_DAYS: '30', PROXY_METRICS_AUTH: 'admin' })).toMatchObject({
      captureAll: true,
      captureMaxBytes: 1024,
      auditRetentionDays: 30,
      metricsAuth: 'admin',
    })
    expect(resolveObservability({ capture: true, metricsAuth: 'none', logFormat: 'json' }, { PROXY_CAPTURE: 'off' })).toMatchObject({ captureAll: true, metricsAuth: 'none', logFormat: 'json' })
    expect(() => resolveObservability({}, { PROXY_CAPTURE: 'maybe' })).toThrow(/PROXY_CAPTURE must be on or off/)
    expect(() => resolveObservability({}, { PROXY_AUDIT_RETENTION_DAYS: '-1' })).toThrow(/positive number of days/)
    expect(() => resolveObservability({}, { PROXY_METRICS_AUTH: 'open' })).toThrow(/admin, none or auto/)
    expect(metricsNeedAdmin('auto', '127.0.0.1')).toBe(false)
    expect(metricsNeedAdmin('auto', '::1')).toBe(false)
    expect(metricsNeedAdmin('auto', '0.0.0.0')).toBe(true)
    expect(metricsNeedAdmin('none', '0.0.0.0')).toBe(false)
    expect(metricsNeedAdmin('admin', '127.0.0.1')).toBe(true)
  })
})

describe('request accounting', () => {
  function telemetryWith(live?: Partial<LiveStats>) {
    const lines: Array<Record<string, unknown>> = []
    const destination = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).trim().split('\n')) lines.push(JSON.parse(l))
        done()
      },
    })
    const registry = new Registry()
    const config = configWith([])
    const metrics = createMetrics(registry, { config: () => config, processMetrics: false })
    const telemetry = createTelemetry({ logger: createLogger({ destination }), metrics, liveStats: live as LiveStats | undefined })
    const requests = async () => (await registry.getSingleMetric('proxy_requests_total')!.get()).values.reduce((n, v) => n + v.value, 0)
    return { telemetry, lines, requests }
  }

  it('accounts for the requests that ended in one turn together, in order, once that turn is over', async () => {
    const { telemetry, lines, requests } = telemetryWith()
    telemetry.requestDone(record({ requestId: 'req_a' }))
    telemetry.requestDone(record({ requestId: 'req_b', status: 502, error: { type: 'upstream_error', code: 'bad_gateway', message: 'down' } }))
    expect(lines).toHaveLength(0)
    expect(await requests()).toBe(0)
    await new Promise((r) => setImmediate(r))
    expect(lines.map((l) => [l.request_id, l.status, l.level])).toEqual([
      ['req_a', 200, 30],
      ['req_b', 502, 50],
    ])
    expect(await requests()).toBe(2)
    // flush() does it at once (shutdown)
    telemetry.requestDone(record({ requestId: 'req_c' }))
    telemetry.flush()
    expect(lines.map((l) => l.request_id)).toEqual(['req_a', 'req_b', 'req_c'])
  })

  it('goes on with the rest of a batch when one request cannot be accounted for, and says which', async () => {
    const { telemetry, lines } = telemetryWith({
      requestDone: (r: RequestRecord) => {
        if (r.requestId === 'req_bad') throw new Error('live stats broke')
      },
    })
    telemetry.requestDone(record({ requestId: 'req_bad' }))
    telemetry.requestDone(record({ requestId: 'req_ok' }))
    await new Promise((r) => setImmediate(r))
    expect(lines.map((l) => [l.msg, l.request_id])).toEqual([
      ['could not account for a request', 'req_bad'],
      ['request', 'req_ok'],
    ])
    expect(lines[0]).toMatchObject({ level: 50, err: 'live stats broke' })
  })
})

describe('the logger', () => {
  it('writes asynchronously and flushes everything on shutdown', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'proxy-log-'))
    try {
      const file = path.join(dir, 'out.log')
      const dest = pino.destination({ dest: file, sync: false, minLength: 4096 })
      const logger = createLogger({ destination: dest })
      for (let i = 0; i < 100; i++) logger.info({ i }, 'line')
      await flushLogger(logger)
      const lines = readFileSync(file, 'utf8').trim().split('\n')
      expect(lines).toHaveLength(100)
      expect(JSON.parse(lines[99]!)).toMatchObject({ i: 99, msg: 'line', service: 'proxy' })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('pretty-prints for a terminal, and scrubs known secrets from every string once told them', async () => {
    const out: string[] = []
    const destination = new Writable({
      write(chunk, _enc, cb) {
        out.push(String(chunk))
        cb()
      },
    })
    const pretty = createLogger({ destination, pretty: true })
    pretty.info({ request_id: 'req_1', method: 'POST', path: '/v1/chat/completions', status: 200, ms: 812.5, upstream_ms: 800, ttft_ms: 120, client: 'app' }, 'request')
    expect(out.join('')).toMatch(/INFO.*POST \/v1\/chat\/completions 200 in 812\.5 ms, upstream 800 ms, first chunk 120 ms.*"request_id":"req_1","client":"app"/)
    expect(() => JSON.parse(out[0]!)).toThrow()

    out.length = 0
    const logger = createLogger({ destination })
    setLogScrubber(logger, (text) => text.split('topsecret').join('[redacted]'))
    const shared = { reason: 'key topsecret rejected', nested: { list: ['topsecret'] } }
    logger.warn(shared, 'saw topsecret')
    logger.child({ component: 'x' }).info({ headers: { authorization: 'Bearer abc' } }, 'child')
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l))
    expect(lines[0]).toMatchObject({ reason: 'key [redacted] rejected', nested: { list: ['[redacted]'] }, msg: 'saw [redacted]' })
    expect(lines[1].headers.authorization).toBe('Bearer [redacted]')
    // the caller's object is not changed
    expect(shared.reason).toBe('key topsecret rejected')
  })

  it("writes the request line byte for byte as pino would, through the same fence, and through pino for other loggers", () => {
    const out: string[] = []
    const destination = { write: (line: string) => void out.push(line) }
    const logger = createLogger({ destination })
    setLogScrubber(logger, (text) => text.split('topsecret').join('[redacted]'))
    const write = lineWriter(logger)
    const fields = {
      request_id: 'req_1', method: 'POST', path: '/v1/chat/completions?x="1"', status: 502, ms: 12.5, upstream_ms: null, ttft_ms: undefined,
      client: 'app', stream: false, attempts: 2, tokens: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
      failed_attempts: [{ provider: 'p', status: 401 }], note: 'tab\there, quote " and \\ and é ✓ \u0001 and topsecret and Bearer sk-abc',
      infinite: Number.POSITIVE_INFINITY, msg: 'request',
    }
    for (const level of ['info', 'warn', 'error'] as const) {
      out.length = 0
      const { msg, ...rest } = fields
      logger[level](rest, msg)
      write(level, fields)
      expect(out).toHaveLength(2)
      // the same millisecond gives the same time; only a boundary between the two calls may differ
      const sameTime = (line: string) => line.replace(/"time":"[^"]+"/, '"time":"T"')
      expect(sameTime(out[1]!)).toBe(sameTime(out[0]!))
    }
    const line = JSON.parse(out[1]!)
    expect(line).toMatchObject({ level: 50, service: 'proxy', status: 502, infinite: null, msg: 'request' })
    expect(line.note).toBe('tab\there, quote " and \\ and é ✓ \u0001 and [redacted] and Bearer [redacted]')
    expect(line).not.toHaveProperty('ttft_ms')

    const lines: string[] = []
    const child = createLogger({ destination: { write: (l: string) => void lines.push(l) } }).child({ component: 'x' })
    lineWriter(child)('info', { request_id: 'req_2', msg: 'request' })
    expect(JSON.parse(lines[0]!)).toMatchObject({ component: 'x', request_id: 'req_2', msg: 'request' })
  })
})
