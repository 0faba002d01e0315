/**
 * The S3 capture store end to end, against a real S3-protocol server (s3rver) and the official openai
 * SDK through the real proxy: bodies over the inline cap go to the bucket and read back through
 * `proxy audit show` and the admin API, small ones stay in the row, prune and retention delete the
 * objects with their rows, and a store that cannot be reached (nothing listening, or stopped mid-run)
 * fails no request: the bodies are dropped and counted, the rows kept.
 */
import { createServer } from 'node:net'
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { objectStoreSettings, openObjectStore } from '../../src/store/object-store.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { startRetention } from '../../src/telemetry/retention.js'
import { chatChunks, chatCompletion, startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { startTestS3, type TestS3 } from '../fakes/s3-server.js'
import { cli, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'
import { scrape } from '../telemetry/scrape.js'

const STORE = 's3://captures/audit'
/** a prompt well over the 16 KiB inline cap, and an answer too */
const BIG_PROMPT = `big ${'the quick brown fox jumps over the lazy dog '.repeat(1000)}`
const BIG_ANSWER = 'A'.repeat(30_000)

interface Setup {
  proxy: RunningProxy
  sdk: OpenAI
  adminKey: string
  data: ReturnType<typeof tempDataDir>
}

/** A configured data dir (a provider on the fake upstream, a route, a client with capture on, an admin) and a proxy on it. */
async function setUp(upstream: FakeUpstream, env: Record<string, string>): Promise<Setup> {
  const data = tempDataDir()
  const run = async (args: string[], stdin?: string) => {
    const r = await cli(data.dir, args, stdin === undefined ? {} : { stdin })
    expect(r.code, r.stderr).toBe(0)
    return r.stdout
  }
  await run(['providers', 'add', 'up', '--type', 'openai', '--base-url', upstream.url])
  await run(['keys', 'add', 'up', '--label', 'main'], 'sk-test-capture-000000000\n')
  await run(['models', 'add', 'gpt-4o-mini', '--target', 'up/gpt-4o-mini'])
  const appKey = keyFrom(await run(['clients', 'add', 'app', '--capture']))
  const adminKey = keyFrom(await run(['clients', 'add', 'ops', '--role', 'admin']))
  const proxy = await startProxy({ dataDir: data.dir, port: 0, env: testEnv(data.dir, env), logger: silentLogger(), keychain: null, reloadPollMs: 50, observability: { auditFlushMs: 50 } })
  const sdk = new OpenAI({ apiKey: appKey, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  return { proxy, sdk, adminKey, data }
}

const ask = (sdk: OpenAI, requestId: string, content: string) =>
  sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { headers: { 'x-request-id': requestId } })

const auditRow = (proxy: RunningProxy, requestId: string) => proxy.store.db.selectFrom('audit').selectAll().where('request_id', '=', requestId).executeTakeFirstOrThrow()

async function objectText(s3: TestS3, key: string): Promise<string> {
  const answer = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return answer.Body!.transformToString('utf8')
}

/** Moves rows into the past, as if they were written long ago. */
const age = (proxy: RunningProxy, ids: string[]) => proxy.store.db.updateTable('audit').set({ ts: '2020-01-01T00:00:00.000Z' }).where('request_id', 'in', ids).execute()

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('the S3 capture store', () => {
  let upstream: FakeUpstream
  let s3: TestS3
  let main: Setup
  const storeEnv = () => ({ ...s3.env, PROXY_CAPTURE_STORE: STORE })

  beforeAll(async () => {
    upstream = await startFakeOpenAI()
    upstream.respond((req) => {
      const prompt = String(req.body?.messages?.[0]?.content ?? '')
      if (req.body?.stream) return { kind: 'sse', events: chatChunks(req.body.model, Array.from({ length: 30 }, () => 'B'.repeat(1000))) }
      return { kind: 'json', body: chatCompletion(req.body?.model, prompt.startsWith('big') ? BIG_ANSWER : 'a short answer') }
    })
    s3 = await startTestS3('captures')
    main = await setUp(upstream, storeEnv())
  })
  afterAll(async () => {
    await main?.proxy.close()
    main?.data.cleanup()
    await s3?.cleanup()
    await upstream?.close()
  })

  it('keeps a large captured body in the bucket, with its key and size in the row, and a small one inline', async () => {
    const big = await ask(main.sdk, 'big-1', BIG_PROMPT)
    expect(big.choices[0]!.message.content).toBe(BIG_ANSWER)
    await ask(main.sdk, 'small-1', 'small question')
    await main.proxy.audit.flush()

    const row = await auditRow(main.proxy, 'big-1')
    expect(row.status).toBe(200)
    expect(row.request_body).toBeNull()
    expect(row.response_body).toBeNull()
    expect(row.capture_dropped).toBeNull()
    expect(row.request_body_key).toMatch(/^audit\/\d{4}-\d\d-\d\d\/big-1-[0-9a-f-]{36}\.request\.json$/)
    expect(row.response_body_key).toMatch(/^audit\/\d{4}-\d\d-\d\d\/big-1-[0-9a-f-]{36}\.response\.json$/)
    expect(await s3.keys('audit/')).toEqual(expect.arrayContaining([row.request_body_key, row.response_body_key]))
    const request = await objectText(s3, row.request_body_key!)
    expect(Buffer.byteLength(request)).toBe(row.request_body_bytes)
    expect(row.request_body_bytes).toBeGreaterThan(16 * 1024)
    expect(JSON.parse(request).messages[0].content).toBe(BIG_PROMPT)
    expect(JSON.parse(await objectText(s3, row.response_body_key!)).choices[0].message.content).toBe(BIG_ANSWER)

    const small = await auditRow(main.proxy, 'small-1')
    expect(JSON.parse(small.request_body!).messages[0].content).toBe('small question')
    expect(small.response_body).toContain('a short answer')
    expect([small.request_body_key, small.response_body_key, small.request_body_bytes, small.capture_dropped]).toEqual([null, null, null, null])
  })

  it('keeps a streamed answer over the cap in the bucket as its reassembled text', async () => {
    const stream = await main.sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream please' }], stream: true }, { headers: { 'x-request-id': 'stream-1' } })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
    expect(text).toBe('B'.repeat(30_000))
    await main.proxy.audit.flush()
    const row = await auditRow(main.proxy, 'stream-1')
    expect(row.stream).toBe(1)
    expect(JSON.parse(row.request_body!).stream).toBe(true)
    expect(row.response_body).toBeNull()
    const kept = JSON.parse(await objectText(s3, row.response_body_key!))
    expect(kept).toMatchObject({ stream: true, choices: [{ index: 0, content: 'B'.repeat(30_000), finish_reason: 'stop' }] })
  })

  it('reads the bodies back for proxy audit show, and says where they are when no store is named', async () => {
    const shown = await cli(main.data.dir, ['audit', 'show', 'big-1'], { env: storeEnv() })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('request body:')
    expect(shown.stdout).toContain(BIG_PROMPT.slice(0, 200))
    expect(shown.stdout).toContain(BIG_ANSWER)

    const json = await cli(main.data.dir, ['audit', 'show', 'big-1', '--json', '--capture-store', STORE], { env: s3.env })
    expect(json.code, json.stderr).toBe(0)
    const row = JSON.parse(json.stdout)
    expect(JSON.parse(row.request_body).messages[0].content).toBe(BIG_PROMPT)
    expect(row.capture_notes).toBeUndefined()

    const without = await cli(main.data.dir, ['audit', 'show', 'big-1'])
    expect(without.code).toBe(0)
    expect(without.stdout).not.toContain(BIG_ANSWER)
    expect(without.stdout).toMatch(/The request body \(\d+ bytes\) is in the capture store as 'audit\/.*\.request\.json'; pass --capture-store/)
  })

  it('reads the bodies back for the admin API', async () => {
    const res = await fetch(`${main.proxy.url}/admin/v1/audit/big-1`, { headers: { authorization: `Bearer ${main.adminKey}` } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { object: string; data: Array<{ request_id: string; request_body: string; response_body: string }> }
    expect(body.object).toBe('list')
    expect(body.data).toHaveLength(1)
    expect(JSON.parse(body.data[0]!.request_body).messages[0].content).toBe(BIG_PROMPT)
    expect(JSON.parse(body.data[0]!.response_body).choices[0].message.content).toBe(BIG_ANSWER)

    const missing = await fetch(`${main.proxy.url}/admin/v1/audit/no-such-request`, { headers: { authorization: `Bearer ${main.adminKey}` } })
    expect(missing.status).toBe(404)
    const user = await fetch(`${main.proxy.url}/admin/v1/audit/big-1`, { headers: { authorization: `Bearer ${main.sdk.apiKey}` } })
    expect(user.status).toBe(403)
  })

  it('says clearly when a row points at an object that is gone', async () => {
    await ask(main.sdk, 'big-2', BIG_PROMPT)
    await main.proxy.audit.flush()
    const row = await auditRow(main.proxy, 'big-2')
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: row.request_body_key! }))

    const shown = await cli(main.data.dir, ['audit', 'show', 'big-2'], { env: storeEnv() })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain(`The request body's object '${row.request_body_key}' is missing from s3://captures`)
    // the other body is still there and shown
    expect(shown.stdout).toContain(BIG_ANSWER)
    const res = await fetch(`${main.proxy.url}/admin/v1/audit/big-2`, { headers: { authorization: `Bearer ${main.adminKey}` } })
    const body = (await res.json()) as { data: Array<{ request_body: string | null; capture_notes: string[] }> }
    expect(body.data[0]!.request_body).toBeNull()
    expect(body.data[0]!.capture_notes).toEqual([expect.stringContaining('is missing from s3://captures')])
  })

  it('proxy audit prune deletes the objects with their rows, and refuses to orphan them without the store', async () => {
    await ask(main.sdk, 'old-big', BIG_PROMPT)
    await ask(main.sdk, 'old-small', 'small and old')
    await main.proxy.audit.flush()
    const old = await auditRow(main.proxy, 'old-big')
    const kept = await auditRow(main.proxy, 'big-1')
    await age(main.proxy, ['old-big', 'old-small'])

    const refused = await cli(main.data.dir, ['audit', 'prune', '--older-than', '1d'])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('--capture-store')
    expect(refused.stderr).toContain('Nothing was deleted')
    expect((await auditRow(main.proxy, 'old-small')).request_id).toBe('old-small')

    const pruned = await cli(main.data.dir, ['audit', 'prune', '--older-than', '1d', '--json'], { env: storeEnv() })
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(JSON.parse(pruned.stdout).deleted).toBe(2)
    const keys = await s3.keys('audit/')
    expect(keys).not.toContain(old.request_body_key)
    expect(keys).not.toContain(old.response_body_key)
    expect(keys).toEqual(expect.arrayContaining([kept.request_body_key, kept.response_body_key]))
    const left = await main.proxy.store.db.selectFrom('audit').select('request_id').where('request_id', 'in', ['old-big', 'old-small']).execute()
    expect(left).toEqual([])
  })

  it('automatic retention deletes the objects with their rows, through the server’s writer', async () => {
    await ask(main.sdk, 'old-auto', BIG_PROMPT)
    await main.proxy.audit.flush()
    const old = await auditRow(main.proxy, 'old-auto')
    await age(main.proxy, ['old-auto'])
    const objects = await openObjectStore(objectStoreSettings(STORE, storeEnv()))
    const retention = startRetention({ apply: (writes) => main.proxy.audit.apply(writes), db: main.proxy.store.db, days: 1, logger: silentLogger(), capture: { objects, db: main.proxy.store.db }, firstRunMs: 3_600_000 })
    try {
      expect(await retention.run()).toBe(1)
    } finally {
      retention.stop()
      objects.close()
    }
    expect(await s3.keys('audit/')).not.toContain(old.request_body_key)
    expect(await main.proxy.store.db.selectFrom('audit').select('id').where('request_id', '=', 'old-auto').execute()).toEqual([])
  })

  it('with nothing listening at the endpoint, every request succeeds and the bodies are dropped and counted, the rows kept', async () => {
    const port = await closedPort()
    const down = await setUp(upstream, { ...s3.env, PROXY_S3_ENDPOINT: `http://127.0.0.1:${port}`, PROXY_CAPTURE_STORE: STORE })
    try {
      const ids = Array.from({ length: 12 }, (_, i) => `down-${i}`)
      const answers = await Promise.all(ids.map((id) => ask(down.sdk, id, BIG_PROMPT)))
      expect(answers.map((a) => a.choices[0]!.message.content)).toEqual(ids.map(() => BIG_ANSWER))
      await down.proxy.audit.flush()

      const rows = await down.proxy.store.db.selectFrom('audit').selectAll().where('request_id', 'in', ids).execute()
      expect(rows).toHaveLength(ids.length)
      for (const row of rows) {
        expect(row.status).toBe(200)
        expect([row.request_body, row.request_body_key, row.response_body, row.response_body_key]).toEqual([null, null, null, null])
        expect(row.request_body_bytes).toBeGreaterThan(16 * 1024)
        expect(['error', 'unavailable']).toContain(row.capture_dropped)
      }
      const metrics = await scrape(down.proxy.url)
      expect(metrics.sum('proxy_capture_dropped_total')).toBe(2 * ids.length)
      expect(metrics.value('proxy_capture_dropped_total', { reason: 'error' })).toBeGreaterThan(0)

      const shown = await cli(down.data.dir, ['audit', 'show', 'down-0'])
      expect(shown.code).toBe(0)
      expect(shown.stdout).toMatch(/The request body \(\d+ bytes\) was not kept: the capture store did not take it/)
    } finally {
      await down.proxy.close()
      down.data.cleanup()
    }
  })

  it('with the store stopped mid-run, every request still succeeds and the bodies are dropped and counted, the rows kept', async () => {
    const before = (await scrape(main.proxy.url)).sum('proxy_capture_dropped_total')
    await s3.stop()
    const ids = Array.from({ length: 12 }, (_, i) => `stopped-${i}`)
    const answers = await Promise.all([...ids.map((id) => ask(main.sdk, id, BIG_PROMPT)), ask(main.sdk, 'stopped-small', 'still small')])
    expect(answers).toHaveLength(ids.length + 1)
    await main.proxy.audit.flush()

    const rows = await main.proxy.store.db.selectFrom('audit').selectAll().where('request_id', 'in', ids).execute()
    expect(rows).toHaveLength(ids.length)
    for (const row of rows) {
      expect(row.status).toBe(200)
      expect([row.request_body_key, row.response_body_key]).toEqual([null, null])
      expect(['error', 'unavailable']).toContain(row.capture_dropped)
    }
    expect((await auditRow(main.proxy, 'stopped-small')).request_body).toContain('still small')
    expect((await scrape(main.proxy.url)).sum('proxy_capture_dropped_total')).toBe(before + 2 * ids.length)
  })

  it('with the store down, prune and retention keep the rows whose objects they could not delete', async () => {
    // big-1's objects were written before the store stopped
    const row = await auditRow(main.proxy, 'big-1')
    expect(row.request_body_key).not.toBeNull()
    await age(main.proxy, ['big-1', 'stopped-small'])

    const objects = await openObjectStore(objectStoreSettings(STORE, storeEnv()))
    const retention = startRetention({ apply: (writes) => main.proxy.audit.apply(writes), db: main.proxy.store.db, days: 1, logger: silentLogger(), capture: { objects, db: main.proxy.store.db }, firstRunMs: 3_600_000 })
    try {
      // the row without objects goes; the one with objects stays for a later run
      expect(await retention.run()).toBe(1)
    } finally {
      retention.stop()
      objects.close()
    }
    expect((await auditRow(main.proxy, 'big-1')).request_body_key).toBe(row.request_body_key)

    const pruned = await cli(main.data.dir, ['audit', 'prune', '--older-than', '1d'], { env: storeEnv() })
    expect(pruned.code).not.toBe(0)
    expect(pruned.stderr).toContain('Could not delete')
    expect(pruned.stderr).toContain('run prune again when the store answers')
    expect((await auditRow(main.proxy, 'big-1')).request_body_key).toBe(row.request_body_key)
  })
})
