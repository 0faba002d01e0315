import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { WriteStatement } from '../../../src/store/audit-batch.js'
import type { AuditSink } from '../../../src/store/audit-sink.js'
import type { Store } from '../../../src/store/db.js'
import { simpleStoreWriter } from '../../../src/store/store-writer.js'
import { ResponseBook } from '../../../src/store/response-book.js'
import { fromResponseRow, insertResponseStatement, pruneResponsesStatement, toResponseRow, type StoredResponse } from '../../../src/store/repos/responses.js'
import { openBackendStore, STORE_BACKENDS } from '../../helpers/postgres.js'

describe.each(STORE_BACKENDS)('ResponseBook: stored Responses API objects, on %s', (backend) => {
  let opened: Awaited<ReturnType<typeof openBackendStore>>
  let store: Store
  let writer: AuditSink
  let held: Array<{ writes: WriteStatement[]; done: () => void }>
  let now: number
  let book: ResponseBook

  // The store writer, by hand: statements wait until the test commits them.
  const commit = async () => {
    const flushed = book.flush()
    for (const { writes, done } of held.splice(0)) {
      const applied = writer.apply(writes)
      await writer.flush()
      await applied
      done()
    }
    await flushed
  }
  const response = (id: string, over: Partial<StoredResponse> = {}): StoredResponse => ({
    id,
    clientId: 1,
    provider: 'mock',
    keyLabel: null,
    native: false,
    model: 'm',
    previousId: null,
    input: [{ role: 'user', content: id }],
    response: { id, object: 'response' },
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    ...over,
  })

  beforeEach(async () => {
    opened = await openBackendStore(backend)
    store = opened.store
    writer = simpleStoreWriter(store, { flushed: () => {}, dropped: () => {} })
    held = []
    now = Date.parse('2026-12-07T00:00:00Z')
    book = new ResponseBook({ db: store.db, apply: (writes) => new Promise((resolve) => held.push({ writes, done: () => resolve(writes.length) })), now: () => now })
  })
  afterEach(async () => {
    await writer.close()
    await opened.close()
  })

  it('answers its owner before and after the write is committed, and nobody else', async () => {
    book.remember(response('resp_1'))
    expect((await book.get('resp_1', 1))?.input).toEqual([{ role: 'user', content: 'resp_1' }])
    expect(await book.get('resp_1', 2)).toBeNull()
    await commit()
    await new Promise((r) => setImmediate(r))
    expect(await store.db.selectFrom('responses').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst()).toEqual({ n: 1 })
    expect((await book.get('resp_1', 1))?.response).toEqual({ id: 'resp_1', object: 'response' })
    expect(await book.get('resp_1', 2)).toBeNull()
  })

  it('follows previous ids oldest first, and deletes for the owner only', async () => {
    book.remember(response('resp_a'))
    book.remember(response('resp_b', { previousId: 'resp_a' }))
    book.remember(response('resp_c', { previousId: 'resp_b' }))
    await commit()
    expect((await book.chain('resp_c', 1))?.map((r) => r.id)).toEqual(['resp_a', 'resp_b', 'resp_c'])
    expect(await book.chain('resp_c', 2)).toBeNull()
    expect(await book.delete('resp_b', 2)).toBe(false)
    expect(await book.delete('resp_b', 1)).toBe(true)
    // gone at once, though the delete is not committed yet
    expect(await book.get('resp_b', 1)).toBeNull()
    expect((await book.chain('resp_c', 1))?.map((r) => r.id)).toEqual(['resp_c'])
    await commit()
    await new Promise((r) => setImmediate(r))
    expect(await book.get('resp_b', 1)).toBeNull()
    expect((await book.get('resp_a', 1))?.id).toBe('resp_a')
  })

  it('reuses the compiled insert with exactly the statement kysely would compile (fails if kysely changes its output)', () => {
    insertResponseStatement(store.db, toResponseRow(response('resp_first')))
    const second = response('resp_second', { previousId: 'resp_first', native: true, input: null, response: null, keyLabel: 'main' })
    const reused = insertResponseStatement(store.db, toResponseRow(second))
    const fresh = store.db
      .insertInto('responses')
      .values({ id: second.id, client_id: 1, provider: 'mock', key_label: 'main', native: 1, model: 'm', previous_id: 'resp_first', input: null, response: null, created_at: second.createdAt, expires_at: second.expiresAt })
      .compile()
    expect(reused.sql).toBe(fresh.sql)
    expect(reused.parameters).toEqual(fresh.parameters)
  })

  it('keeps a response waiting for its commit as its row, and gives back what was remembered', async () => {
    const r = response('resp_row', { input: [{ role: 'user', content: [{ type: 'input_text', text: 'é \u0000 "quoted"' }] }], response: { id: 'resp_row', output: [{ type: 'message', content: [] }], usage: { total_tokens: 3 } } })
    expect(fromResponseRow(toResponseRow(r))).toEqual(r)
    book.remember(r)
    // read before the commit (from the row kept in memory) and after it (from the store): the same
    const before = await book.get('resp_row', 1)
    await commit()
    await new Promise((resolve) => setImmediate(resolve))
    expect(before).toEqual(r)
    expect(await book.get('resp_row', 1)).toEqual(r)
  })

  it('treats an expired response as gone, and retention deletes it', async () => {
    book.remember(response('resp_old'))
    await commit()
    now += 61_000
    expect(await book.get('resp_old', 1)).toBeNull()
    const w = pruneResponsesStatement(store.db, new Date(now).toISOString(), 100)
    const applied = writer.apply([w])
    await writer.flush()
    expect(await applied).toBe(1)
  })
})
