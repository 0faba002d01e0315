/**
 * PostgreSQL's writer sends audit rows as COPY text (src/store/copy-text.js). The encoding is checked
 * by what PostgreSQL reads back: every awkward value (the format's own escape characters, NULL beside
 * the string "\N", non-ASCII, numbers of every column type) arrives as it was, a NUL as U+FFFD,, through the in-process
 * writer on the machine's PostgreSQL.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { copyField, copyText, storable } from '../../../src/store/copy-text.js'
import { postgresAuditSink } from '../../../src/store/postgres-sink.js'
import { AUDIT_COLUMNS, auditRowValues, type NewAuditRow } from '../../../src/store/repos/audit.js'
import { openBackendStore } from '../../helpers/postgres.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const base: NewAuditRow = {
  request_id: 'req-1', ts: '2026-12-07T12:00:00.000Z', method: 'POST', path: '/v1/chat/completions', client: 'app', ip: '::1',
  model: 'm', provider: 'mock', upstream_model: 'm', key_label: 'k', stream: 1, status: 200, latency_ms: 1.25, upstream_ms: 1, ttft_ms: null,
  prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: 0.000123, attempts: 1, fallback: null, error_code: null, error_message: null,
  request_body: null, response_body: null, cache: null, saved_usd: null, request_body_key: null, request_body_bytes: null, response_body_key: null, response_body_bytes: null, capture_dropped: null, trace_id: null,
}

describe('COPY text', () => {
  it('escapes the characters the format gives a meaning to, and writes NULL as \\N', () => {
    expect(copyText([['a\tb', 'c\nd\r', 'back\\slash', null, undefined, 42, 1.5, true]])).toBe('a\\tb\tc\\nd\\r\tback\\\\slash\t\\N\t\\N\t42\t1.5\ttrue\n')
    expect(copyText([])).toBe('')
    expect([storable('a\u0000b\u0000'), storable(7), storable(null)]).toEqual(['a\uFFFDb\uFFFD', 7, null])
    expect(copyField(new Date(Date.UTC(2026, 11, 7)))).toBe('2026-12-07T00:00:00.000Z')
    // JSON's own escape (backslash, t) is then escaped for COPY
    expect(copyField({ a: 'x\ty' })).toBe('{"a":"x\\\\ty"}')
  })

  it('PostgreSQL reads back every value as it was written', async () => {
    const o = await openBackendStore('postgres')
    cleanups.push(() => o.close())
    if (o.store.kind !== 'postgres') throw new Error('expected a PostgreSQL store')
    const store = o.store
    const awkward: NewAuditRow[] = [
      { ...base, request_id: 'tabs', error_message: 'a\tb\nc\r\nd', request_body: '{"messages":[{"content":"line1\\nline2 \\\\ \\t"}]}' },
      { ...base, request_id: 'nulls', client: null, error_message: '\\N', response_body: '', ttft_ms: 0 },
      { ...base, request_id: 'unicode', error_message: 'héllo — 你好 🙂', cost_usd: 1e-12, latency_ms: 123456.789, prompt_tokens: 2 ** 40 },
      { ...base, request_id: 'nul', model: 'gpt\u0000x' },
    ]
    const sink = postgresAuditSink(store, { events: { flushed: () => {}, dropped: () => {} } })
    const usage = { day: '2026-12-07', client: 'app', model: 'gpt\u0000x', requests: 1, errors: 0, prompt_tokens: 3, completion_tokens: 4, cost_usd: 0.5, cache_hits: 0, saved_usd: 0 }
    await sink.write(awkward.map(auditRowValues), [usage])
    expect(await sink.flush()).toBe(4)
    expect(await store.db.selectFrom('usage').select(['model', 'requests']).execute()).toEqual([{ model: 'gpt\uFFFDx', requests: 1 }])
    await sink.close()
    const back = await store.db.selectFrom('audit').selectAll().orderBy('id').execute()
    expect(back).toHaveLength(4)
    for (const [i, row] of back.entries()) {
      // PostgreSQL's text cannot hold a NUL: it arrives as U+FFFD rather than failing the batch
      const want = { ...awkward[i]!, model: awkward[i]!.model?.replace('\u0000', '\uFFFD') ?? null }
      for (const c of AUDIT_COLUMNS) expect([c, row[c] === null ? null : typeof want[c] === 'number' ? Number(row[c]) : row[c]]).toEqual([c, want[c]])
    }
  })
})
