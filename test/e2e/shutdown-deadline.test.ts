/**
 * close(deadline) in-process: streams still open at the deadline end with a `server_shutting_down`
 * error event; a plain request still waiting on its upstream is cut shortly after; and every one of
 * them is in the audit trail once close() resolves (nothing buffered is lost).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, keyFrom, startTestProxy, tempDataDir, withTestStore } from '../helpers/proxy.js'

describe('shutdown at the drain deadline (in-process)', () => {
  const data = tempDataDir()
  let key: string

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'slowstream', '--type', 'mock', '--setting', 'chunks=100', '--setting', 'chunk_gap_ms=50'])).code).toBe(0)
    expect((await cli(data.dir, ['providers', 'add', 'slowcall', '--type', 'mock', '--setting', 'latency_ms=20000'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'stream-model', '--target', 'slowstream/s'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'call-model', '--target', 'slowcall/c'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
  })
  afterAll(() => data.cleanup())

  it('ends open streams with an error event, cuts the rest, and audits every request', async () => {
    const proxy = await startTestProxy(data.dir)
    const post = (body: unknown) => fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const streams = await Promise.all([1, 2, 3].map(() => post({ model: 'stream-model', stream: true, messages: [{ role: 'user', content: 'go on' }] })))
    const readers = streams.map(async (res) => {
      const text = await res.text()
      return text
    })
    const call = post({ model: 'call-model', messages: [{ role: 'user', content: 'slow' }] }).then(
      (res) => ({ status: res.status }),
      (err: Error) => ({ error: err.message }),
    )
    await new Promise((r) => setTimeout(r, 200))
    expect(proxy.liveStats.activeStreams).toBe(3)

    const started = Date.now()
    await proxy.close(600)
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(550)
    expect(took).toBeLessThan(3000)

    for (const text of await Promise.all(readers)) {
      const last = text.trim().split('\n\n').at(-1)!
      expect(JSON.parse(last.replace(/^data: /, ''))).toMatchObject({ error: { code: 'server_shutting_down', type: 'service_unavailable' } })
    }
    // The plain request had nothing to send yet: its connection was closed.
    expect(await call).toHaveProperty('error')

    const rows = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().execute())
    expect(rows).toHaveLength(4)
    expect(rows.filter((r) => r.error_code === 'server_shutting_down')).toHaveLength(3)
    expect(rows.filter((r) => r.model === 'call-model')).toHaveLength(1)
  }, 20_000)
})
