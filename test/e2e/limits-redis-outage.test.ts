/**
 * Redis dies mid-run and comes back. Uses its own redis-server on port 6390 (never the shared one on
 * 6379), with two proxy instances sharing it: requests keep being answered (fail-open: local limits;
 * fail-closed: 503), /readyz says so, and shared limits resume once Redis is back on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { cli, eventually, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'
import { uniquePrefix } from '../limits/matrix.js'

const PORT = Number(process.env.PROXY_TEST_OUTAGE_REDIS_PORT ?? 6390)
const URL = `redis://127.0.0.1:${PORT}`
const L = 5

async function startRedis(): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' })
  proc.on('error', () => undefined)
  const probe = new Redis(URL, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  probe.on('error', () => undefined)
  try {
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server on port ${PORT} exited (${proc.exitCode}); is the port taken? Is redis-server installed?`)
        return probe.connect().then(
          () => probe.ping(),
          () => null,
        )
      },
      (v) => v === 'PONG',
      5000,
    )
  } finally {
    probe.disconnect()
  }
  return proc
}

function stopRedis(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
    proc.once('exit', () => resolve())
    proc.kill('SIGKILL')
  })
}

interface Outcome {
  status: number
  ms: number
  code: string | null
  retryAfter: string | null
}

describe('Redis outage (own redis-server on port 6390)', () => {
  const data = tempDataDir()
  const prefix = uniquePrefix('outage')
  let redis: ChildProcess
  let a: RunningProxy
  let b: RunningProxy
  let key = ''
  const figures: string[] = []

  const send = async (proxy: RunningProxy): Promise<Outcome> => {
    const started = performance.now()
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    })
    const body = (await res.json()) as { error?: { code: string } }
    return { status: res.status, ms: performance.now() - started, code: body.error?.code ?? null, retryAfter: res.headers.get('retry-after') }
  }
  /** n requests, alternating between the instances, one after the other */
  const burst = async (n: number): Promise<Outcome[]> => {
    const out: Outcome[] = []
    for (let i = 0; i < n; i++) out.push(await send(i % 2 ? b : a))
    return out
  }
  const readyz = async (proxy: RunningProxy) => {
    const res = await fetch(`${proxy.url}/readyz`)
    return { http: res.status, ...((await res.json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> }) }
  }
  const summary = (label: string, outcomes: Outcome[]) => {
    const by = (s: number) => outcomes.filter((o) => o.status === s).length
    const line = `${label}: ${outcomes.length} requests -> ${by(200)} x 200, ${by(429)} x 429, ${by(503)} x 503, other ${outcomes.length - by(200) - by(429) - by(503)}; slowest ${Math.round(Math.max(...outcomes.map((o) => o.ms)))} ms`
    figures.push(line)
    return line
  }
  const setPolicy = async (onFailure: 'open' | 'closed') => {
    const r = await cli(data.dir, ['policy', 'set', 'global', '--file', '-'], { stdin: JSON.stringify({ redis: { on_failure: onFailure } }) })
    expect(r.code, r.stderr).toBe(0)
    for (const p of [a, b]) await eventually(() => p.config.current().globalPolicy.redis.on_failure, (v) => v === onFailure)
  }

  beforeAll(async () => {
    redis = await startRedis()
    for (const args of [
      ['providers', 'add', 'mock', '--type', 'mock'],
      ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'],
    ]) expect((await cli(data.dir, args)).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app', '--limit', `requests=${L}/1m`])).stdout)
    const start = () => startProxy({ dataDir: data.dir, port: 0, env: testEnv(data.dir, { PROXY_REDIS_URL: URL, PROXY_REDIS_PREFIX: prefix }), logger: silentLogger(), keychain: null, reloadPollMs: 50 })
    ;[a, b] = await Promise.all([start(), start()])
  }, 30_000)

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
    if (redis) await stopRedis(redis)
    data.cleanup()
    console.log(`Redis outage figures (limit ${L}/1m, two instances):\n  ${figures.join('\n  ')}`)
  })

  it('shares the limit while Redis is up', async () => {
    const out = await burst(3 * L)
    summary('redis up', out)
    expect(out.filter((o) => o.status === 200)).toHaveLength(L)
    expect(out.filter((o) => o.status === 429)).toHaveLength(2 * L)
    expect((await readyz(a)).status).toBe('ready')
  })

  it('fails open while Redis is down: answers at once on local limits, /readyz degraded', async () => {
    await stopRedis(redis)
    const out = await burst(4 * L)
    summary('redis killed, on_failure=open', out)
    expect(out.every((o) => o.status === 200 || o.status === 429)).toBe(true)
    // each instance counts on its own now, from a fresh local window
    expect(out.filter((o) => o.status === 200)).toHaveLength(2 * L)
    expect(Math.max(...out.map((o) => o.ms))).toBeLessThan(1000)
    for (const p of [a, b]) {
      const r = await readyz(p)
      expect(r.http).toBe(200)
      expect(r.status).toBe('degraded')
      expect(r.checks.degraded).toMatchObject({ ok: true, detail: expect.stringMatching(/redis unreachable.*fail-open/) })
    }
  })

  it('fails closed when the policy says so: 503 service_unavailable in OpenAI shape, not ready', async () => {
    await setPolicy('closed')
    const out = await burst(4)
    summary('redis down, on_failure=closed', out)
    expect(out.every((o) => o.status === 503 && o.code === 'service_unavailable' && o.retryAfter === '1')).toBe(true)
    expect(Math.max(...out.map((o) => o.ms))).toBeLessThan(1000)
    const r = await readyz(a)
    expect(r.http).toBe(503)
    expect(r.checks.limits).toMatchObject({ ok: false })
  })

  it('reconnects by itself when Redis is back on the same port, and shared limits resume', async () => {
    redis = await startRedis()
    const started = Date.now()
    for (const p of [a, b]) await eventually(() => readyz(p), (r) => r.status === 'ready', 10_000)
    figures.push(`redis restarted: both instances ready again after ${Date.now() - started} ms`)
    const out = await burst(3 * L)
    summary('redis back (empty), on_failure=closed', out)
    expect(out.filter((o) => o.status === 200)).toHaveLength(L)
    expect(out.filter((o) => o.status === 429)).toHaveLength(2 * L)
    const admin = new Redis(URL)
    const keys = await admin.keys(`${prefix}*`).finally(() => admin.disconnect())
    expect(keys.length).toBeGreaterThan(0)
  })

  it('does not let a hung Redis (SIGSTOP) hold requests longer than the deadline', async () => {
    redis.kill('SIGSTOP')
    try {
      const out = await burst(6)
      summary('redis hung (SIGSTOP), on_failure=closed', out)
      expect(out.every((o) => o.status === 503)).toBe(true)
      // the first check waits out the 500 ms deadline; the next skip Redis for a second
      expect(Math.max(...out.map((o) => o.ms))).toBeLessThan(1500)
      expect(out.filter((o) => o.ms < 100).length).toBeGreaterThanOrEqual(3)
    } finally {
      redis.kill('SIGCONT')
    }
    for (const p of [a, b]) await eventually(() => send(p), (o) => o.status === 429, 10_000)
  })
})
