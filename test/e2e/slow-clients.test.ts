/**
 * Slow and idle clients (slowloris): connections that send nothing, half a header or a body byte at a
 * time are closed once the header or body timeout passes; idle keep-alive connections once theirs
 * does; connections beyond the cap are refused while the server keeps serving. None of it limits the
 * answer: a long stream and a slow upstream outlast the timeouts. Raw sockets against the real server.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, cliOk, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'
import { assertBuilt, spawnServe } from '../limits/serve-process.js'
import { parseScrape } from '../telemetry/scrape.js'

const HEADER_MS = 600
const BODY_MS = 900
const KEEPALIVE_MS = 1200

/** A raw connection: what the server sent, and when (ms after connecting) it closed the connection. */
interface Probe {
  socket: Socket
  received: () => string
  closed: Promise<number>
}

function probe(url: string, act: (s: Socket) => void = () => {}): Promise<Probe> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let received = ''
    const started = performance.now()
    socket.on('data', (d) => (received += d))
    const closed = new Promise<number>((done) => socket.once('close', () => done(performance.now() - started)))
    socket.once('error', () => undefined)
    socket.once('connect', () => {
      act(socket)
      resolve({ socket, received: () => received, closed })
    })
    socket.once('error', reject)
  })
}

/** Writes `text` one byte every `everyMs` while the socket is open. */
function trickle(s: Socket, text: string, everyMs: number): void {
  let i = 0
  const timer = setInterval(() => {
    if (s.destroyed || i >= text.length) return clearInterval(timer)
    s.write(text[i++]!)
  }, everyMs)
  s.once('close', () => clearInterval(timer))
}

const within = (ms: number, from: number, to: number) => {
  expect(ms).toBeGreaterThanOrEqual(from)
  expect(ms).toBeLessThanOrEqual(to)
}

describe('slow clients meet the header, body and keep-alive timeouts', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string

  beforeAll(async () => {
    await cliOk(data.dir, ['providers', 'add', 'slow', '--type', 'mock', '--setting', `latency_ms=${HEADER_MS + BODY_MS + 1000}`, '--setting', 'reply=late but whole'])
    await cliOk(data.dir, ['providers', 'add', 'drip', '--type', 'mock', '--setting', 'chunks=12', '--setting', `chunk_gap_ms=${Math.ceil((HEADER_MS + BODY_MS + 1000) / 10)}`, '--setting', 'reply=a stream longer than every timeout'])
    await cliOk(data.dir, ['models', 'add', 'slow-model', '--target', 'slow/m'])
    await cliOk(data.dir, ['models', 'add', 'drip-model', '--target', 'drip/m'])
    key = keyFrom((await cliOk(data.dir, ['clients', 'add', 'app'])).stdout)
    proxy = await startTestProxy(data.dir, { connections: { headerTimeoutMs: HEADER_MS, bodyTimeoutMs: BODY_MS, keepAliveTimeoutMs: KEEPALIVE_MS } })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  // Node checks the timeouts every quarter of the shorter one: a limit holds within that, plus slack for a busy machine.
  const CHECK = HEADER_MS / 4 + 400

  it('closes a connection that sends nothing once the header timeout passes', async () => {
    const p = await probe(proxy.url)
    within(await p.closed, HEADER_MS - 50, HEADER_MS + CHECK)
  })

  it('closes a connection that sends half a header, or its header a byte at a time', async () => {
    const half = await probe(proxy.url, (s) => s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Ty'))
    const slow = await probe(proxy.url, (s) => trickle(s, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n', 50))
    within(await half.closed, HEADER_MS - 50, HEADER_MS + CHECK)
    within(await slow.closed, HEADER_MS - 50, HEADER_MS + CHECK)
    expect(half.received()).toMatch(/^HTTP\/1\.1 408 /)
  })

  it('closes a connection that sends its body a byte at a time once the body timeout passes', async () => {
    const p = await probe(proxy.url, (s) => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`)
      trickle(s, '{"model":"slow-model"'.padEnd(1000, ' '), 100)
    })
    within(await p.closed, HEADER_MS + BODY_MS - 50, HEADER_MS + BODY_MS + CHECK)
  })

  it('closes an idle keep-alive connection once the keep-alive timeout passes', async () => {
    let answeredAt = 0
    const p = await probe(proxy.url, (s) => {
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
      s.once('data', () => (answeredAt = performance.now()))
    })
    const closedAt = await p.closed
    expect(p.received()).toMatch(/^HTTP\/1\.1 200 /)
    expect(answeredAt).toBeGreaterThan(0)
    // Node adds up to a second of its own to the keep-alive timeout
    expect(closedAt).toBeGreaterThanOrEqual(KEEPALIVE_MS - 50)
    expect(closedAt).toBeLessThanOrEqual(KEEPALIVE_MS + 1000 + CHECK)
  })

  it('still answers after a slow upstream and completes a stream that outlast the timeouts', async () => {
    const sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const started = performance.now()
    const answer = await sdk.chat.completions.create({ model: 'slow-model', messages: [{ role: 'user', content: 'take your time' }] })
    expect(answer.choices[0]!.message.content).toBe('late but whole')
    expect(performance.now() - started).toBeGreaterThan(HEADER_MS + BODY_MS + 900)

    const streamStarted = performance.now()
    const stream = await sdk.chat.completions.create({ model: 'drip-model', stream: true, messages: [{ role: 'user', content: 'drip' }] })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe('a stream longer than every timeout')
    expect(performance.now() - streamStarted).toBeGreaterThan(HEADER_MS + BODY_MS + 900)
  })
})

describe('the connection cap', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  const CAP = 6
  const metrics = async () => parseScrape((await getOnce(proxy.url, '/metrics')).text)

  beforeAll(async () => {
    proxy = await startTestProxy(data.dir, { connections: { maxConnections: CAP } })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('reports open connections and the cap in /metrics', async () => {
    const idle = await Promise.all([1, 2, 3].map(() => probe(proxy.url)))
    try {
      const m = await metrics()
      // the three idle ones and the scrape's own
      expect(m.value('proxy_connections_open')).toBe(4)
      expect(m.value('proxy_connections_max')).toBe(CAP)
      expect(m.value('proxy_connections_refused_total')).toBe(0)
    } finally {
      for (const p of idle) p.socket.destroy()
    }
  })

  it('refuses connections beyond the cap, and serves a normal client again once they go', async () => {
    await eventually(metrics, (m) => m.value('proxy_connections_open') === 1)
    const held = await Promise.all(Array.from({ length: CAP }, () => probe(proxy.url)))
    const refused = await probe(proxy.url)
    within(await refused.closed, 0, 500)
    expect(refused.received()).toBe('')
    await expect(getOnce(proxy.url, '/health')).rejects.toThrow()
    // the held ones are still served
    held[0]!.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    await eventually(() => held[0]!.received(), (r) => r.startsWith('HTTP/1.1 200 '))

    for (const p of held) p.socket.destroy()
    const res = await eventually(() => getOnce(proxy.url, '/health').catch(() => null), (r) => r?.status === 200)
    expect(res!.text).toContain('ok')
    // the raw probe and the GET at least (a retry above may have come before the server saw them go)
    const refusedTotal = (await metrics()).value('proxy_connections_refused_total')
    expect(refusedTotal).toBeGreaterThanOrEqual(2)
    const stats = JSON.parse((await getOnce(proxy.url, '/admin/v1/stats', { authorization: `Bearer ${adminToken(data.dir)}` })).text)
    expect(stats.connections).toEqual({ open: 1, max: CAP, refused: refusedTotal })
  })
})

describe('proxy serve: timeouts and the cap from flags, PROXY_* variables and the config file', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  /** Starts `proxy serve`; a connection that sends nothing must close after `headerMs`, and /metrics show the cap `max`. */
  const expectServe = async (env: Record<string, string>, args: string[], headerMs: number, max: number) => {
    assertBuilt()
    const serve = await spawnServe(data.dir, env, args)
    try {
      const idle = await probe(serve.url)
      within(await idle.closed, headerMs - 50, headerMs * 1.25 + 400)
      expect(parseScrape((await getOnce(serve.url, '/metrics')).text).value('proxy_connections_max')).toBe(max)
    } finally {
      await serve.stop()
    }
  }

  it('applies --header-timeout and --max-connections over the variables', async () => {
    await expectServe({ PROXY_MAX_CONNECTIONS: '11', PROXY_HEADER_TIMEOUT_SECONDS: '30' }, ['--header-timeout', '0.5', '--max-connections', '9'], 500, 9)
  })

  it('takes them from PROXY_* variables, then the config file', async () => {
    const file = join(data.dir, 'proxy.json')
    writeFileSync(file, JSON.stringify({ max_connections: 13, header_timeout_seconds: 0.4 }))
    await expectServe({ PROXY_MAX_CONNECTIONS: '11', PROXY_CONFIG: file }, [], 400, 11)
  })

  it('refuses values that are not a duration or a count', async () => {
    for (const [args, message] of [
      [['--header-timeout', 'soon'], /--header-timeout \(or PROXY_HEADER_TIMEOUT_SECONDS\) must be a number of seconds above 0/],
      [['--keepalive-timeout', '0'], /--keepalive-timeout \(or PROXY_KEEPALIVE_TIMEOUT_SECONDS\) must be a number of seconds above 0/],
      [['--max-connections', '2.5'], /--max-connections \(or PROXY_MAX_CONNECTIONS\) must be a whole number, at least 1/],
    ] as const) {
      const r = await cli(data.dir, ['serve', '--port', '0', ...args])
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(message)
    }
  })
})

/** One GET on a connection of its own, closed after the answer (a pooled connection would count against the cap). */
function getOnce(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}${path}`, { agent: false, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

function adminToken(dir: string): string {
  return readFileSync(join(dir, 'admin.token'), 'utf8').trim()
}
