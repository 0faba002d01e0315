/**
 * No secret (upstream keys, client keys, the master key) in any log line, audit row or metric: a
 * representative run (answers, streams, errors that echo the key, fallback, key rotation, content
 * capture on) with the logger writing to memory, then every line and every row is searched.
 */
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBase62 } from '../../src/core/ids.js'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { createLogger } from '../../src/telemetry/logger.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, eventually, keyFrom, tempDataDir, testEnv, TEST_MASTER_KEY, withTestStore } from '../helpers/proxy.js'
import { scrape } from './scrape.js'

// Shaped unlike the patterns the provider layer redacts, so only the telemetry's own fence can catch them.
const SECRET_1 = `upkeyone_${randomBase62(24)}`
const SECRET_2 = `upkeytwo_${randomBase62(24)}`
const SECRET_3 = `upkeythree_${randomBase62(24)}`

describe('secrets never reach logs, audit rows or metrics', () => {
  const data = tempDataDir()
  const lines: string[] = []
  let fake: FakeUpstream
  let proxy: RunningProxy
  let appKey: string
  let opsKey: string
  const strangerKey = `sk-proxy-${randomBase62(40)}`

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    fake.respond((req) => {
      const auth = String(req.headers.authorization ?? '')
      const text = JSON.stringify(req.body?.messages ?? '')
      // Upstreams echo the key they rejected (OpenAI masks it; assume the worst).
      if (text.includes('reject-me')) return { kind: 'json', status: 401, body: { error: { message: `Incorrect API key provided: ${auth.slice(7)}.`, type: 'invalid_request_error', code: 'invalid_api_key' } } }
      if (text.includes('rate-me') && auth === `Bearer ${SECRET_1}`) {
        return { kind: 'json', status: 429, body: { error: { message: `Rate limit reached for key ${SECRET_1}`, type: 'requests', code: 'rate_limit_exceeded' } } }
      }
      if (text.includes('break-me')) return { kind: 'json', status: 500, body: { error: { message: `internal error while using ${auth}` } } }
      return undefined
    })
    expect((await cli(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', fake.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'up', '--label', 'first', '--priority', '0'], { stdin: SECRET_1 + '\n' })).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'up', '--label', 'second', '--priority', '1'], { stdin: SECRET_2 + '\n' })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'up/gpt-4o-mini-2024-07-18'])).code).toBe(0)
    appKey = keyFrom((await cli(data.dir, ['clients', 'add', 'app', '--capture'])).stdout)
    opsKey = keyFrom((await cli(data.dir, ['clients', 'add', 'ops', '--role', 'admin'])).stdout)
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean))
        cb()
      },
    })
    proxy = await startProxy({
      dataDir: data.dir,
      port: 0,
      env: testEnv(data.dir),
      logger: createLogger({ level: 'trace', destination }),
      keychain: null,
      reloadPollMs: 50,
      observability: { captureAll: true, auditFlushMs: 50 },
    })
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  const chat = (key: string, content: string, extra: Record<string, unknown> = {}) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra }),
    })

  it('runs a representative set of requests, then finds no secret anywhere', async () => {
    const statuses: number[] = []
    const send = async (res: Promise<Response>) => {
      const r = await res
      await r.text()
      statuses.push(r.status)
    }
    await send(chat(appKey, 'hello'))
    await send(chat(appKey, 'stream please', { stream: true }))
    await send(chat(appKey, 'rate-me')) // 429 on the first key, answered by the second
    await send(chat(strangerKey, 'who am i')) // unknown client key
    await send(chat(SECRET_2, 'a client sending an upstream key as its own')) // 401
    await send(fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${opsKey}` } }))
    // Rotate the first key while the server runs; the next requests use the new secret.
    expect((await cli(data.dir, ['keys', 'rotate', 'first', '--provider', 'up'], { stdin: SECRET_3 + '\n' })).code).toBe(0)
    await eventually(() => proxy.config.current().providers.get('up')!.keys.some((k) => k.secret === SECRET_3), Boolean)
    await send(chat(appKey, 'after rotation'))
    await send(chat(opsKey, 'stream after rotation', { stream: true }))
    // Last, as they may take keys out of service: upstream errors that echo the key they were sent.
    await send(chat(appKey, 'break-me')) // 500 upstream, echoing the Authorization header
    await send(chat(appKey, 'reject-me')) // 401 upstream, echoing the key
    expect(statuses.slice(0, 8)).toEqual([200, 200, 200, 401, 401, 200, 200, 200])
    expect(statuses.slice(8).every((s) => s >= 500)).toBe(true)
    expect(fake.requests.some((r) => r.headers.authorization === `Bearer ${SECRET_3}`)).toBe(true)

    const metrics = await scrape(proxy.url)
    await proxy.close()
    const rows = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().orderBy('id').execute())

    // The run is what we think it is: one log line and one audit row per request, bodies captured.
    const requestLines = lines.filter((l) => JSON.parse(l).msg === 'request')
    expect(requestLines).toHaveLength(statuses.length)
    expect(rows).toHaveLength(statuses.length)
    expect(rows.map((r) => r.status)).toEqual(statuses)
    expect(rows.find((r) => r.request_body?.includes('rate-me'))?.key_label).toBe('second')
    expect(rows.some((r) => r.response_body?.includes('Hello from fake'))).toBe(true)
    expect(rows.some((r) => r.error_message?.includes('[redacted]'))).toBe(true)
    expect(lines.some((l) => JSON.parse(l).event === 'reload')).toBe(true)

    const secrets = { SECRET_1, SECRET_2, SECRET_3, appKey, opsKey, strangerKey, TEST_MASTER_KEY }
    const haystacks = [...lines.map((l, i) => [`log line ${i}`, l] as const), ...rows.map((r) => [`audit row ${r.id}`, JSON.stringify(r)] as const), ['metrics', metrics.text] as const]
    for (const [name, secret] of Object.entries(secrets)) {
      for (const [where, text] of haystacks) {
        if (text.includes(secret)) throw new Error(`${name} appears in ${where}: ${text}`)
        // a recognisable piece of it counts too
        if (text.includes(secret.slice(-16))) throw new Error(`the tail of ${name} appears in ${where}: ${text}`)
      }
    }
  })
})
