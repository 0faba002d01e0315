/**
 * What a client with a low-privilege key found it could do to the proxy (issue 23), each through the real
 * server: open a provider's circuit for everyone with deep JSON, stall the event loop with it, make the
 * proxy echo and log a 5 MB model name, be told a wrong-typed field is missing, leave an admin 500 the log
 * cannot explain, trip over a trailing slash or HEAD, probe admin paths without a key, and have a pasted
 * upstream key kept in the captured audit body.
 */
import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { assertBuilt, spawnServe } from '../limits/serve-process.js'
import { addClient, addProvider, addRoute, captureLogger, chat, must, secret } from '../gateway/harness.js'
import { cli, eventually, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const readJson = async (res: Response): Promise<any> => JSON.parse(await res.text())

/** A chat request whose extra field `x` holds `levels` arrays inside one another (the body's own depth is levels + 1). */
const nested = (levels: number, model = 'm') => `{"model":"${model}","messages":[{"role":"user","content":"hi"}],"x":${'['.repeat(levels)}${']'.repeat(levels)}}`
/**
 * The same depth inside `stream_options`, which the proxy writes itself for a stream (it asks for usage):
 * a member it passes on unchanged goes out as the client's bytes, this one it must encode.
 */
const nestedInStreamOptions = (levels: number) =>
  `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"x":${'['.repeat(levels)}${']'.repeat(levels)}}}`

function post(url: string, key: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body })
}

/** Provider `mock`, model `m` on it, and client `app`; returns app's key. */
async function mockModel(dir: string): Promise<string> {
  await must(cli(dir, ['providers', 'add', 'mock', '--type', 'mock']))
  await must(cli(dir, ['models', 'add', 'm', '--target', 'mock/m']))
  return addClient(dir, 'app')
}

/** The server's own view of provider alpha and its key a1, from the admin API. */
async function alphaCircuits(proxy: RunningProxy, dir: string) {
  const token = readFileSync(path.join(dir, 'admin.token'), 'utf8').trim()
  const stats = await readJson(await fetch(`${proxy.url}/admin/v1/stats`, { headers: { authorization: `Bearer ${token}` } }))
  const alpha = stats.providers.find((p: { name: string }) => p.name === 'alpha')
  return { provider: alpha.circuit.state as string, key: alpha.keys[0].circuit.state as string, keyHealth: alpha.keys[0].health as string, errors: alpha.errors as number }
}

describe('deep JSON cannot take a provider down for everyone', () => {
  let data: ReturnType<typeof tempDataDir>
  let alpha: FaultUpstream
  let proxy: RunningProxy | null = null
  let key: string
  let log: Awaited<ReturnType<typeof captureLogger>>

  beforeEach(async () => {
    data = tempDataDir()
    alpha = await startFaultUpstream('alpha')
    // the default policy: 3 attempts, a circuit that opens after 5 consecutive failures
    await addProvider(data.dir, 'alpha', alpha, ['a1'])
    await addRoute(data.dir, 'm', ['alpha/up'])
    key = await addClient(data.dir, 'app')
    log = await captureLogger()
  })
  afterEach(async () => {
    await proxy?.close()
    proxy = null
    await alpha.close()
    data.cleanup()
  })

  it('refuses 5,000 levels of nesting with a 400 before parsing; the provider stays closed and serves the next request', async () => {
    proxy = await startTestProxy(data.dir, { logger: log.logger })
    for (let i = 0; i < 2; i++) {
      const res = await post(proxy.url, key, nested(5000))
      expect(res.status).toBe(400)
      expect((await readJson(res)).error).toMatchObject({ type: 'invalid_request_error', code: 'json_too_deep', param: null })
    }
    expect(alpha.count()).toBe(0)
    const next = await chat(proxy.url, key, 'm')
    expect(next.status).toBe(200)
    expect(next.headers.get('x-proxy-attempts')).toBe('1')
    expect(await alphaCircuits(proxy, data.dir)).toEqual({ provider: 'closed', key: 'closed', keyHealth: 'ok', errors: 0 })
  })

  it('with the limit raised past what the proxy can encode, the request gets a 500 of its own: no retry, no circuit, the cause in the log', async () => {
    proxy = await startTestProxy(data.dir, { logger: log.logger, maxJsonDepth: 100_000 })
    // passed on unchanged, the deep member is the client's own bytes: nothing to encode, the upstream answers
    const passed = await post(proxy.url, key, nested(5000))
    expect(passed.status).toBe(200)
    expect(alpha.count()).toBe(1)
    alpha.requests.length = 0
    const ids: string[] = []
    for (let i = 0; i < 2; i++) {
      const res = await post(proxy.url, key, nestedInStreamOptions(5000))
      expect(res.status).toBe(500)
      expect((await readJson(res)).error).toMatchObject({ type: 'server_error', code: 'internal_error' })
      ids.push(res.headers.get('x-request-id')!)
    }
    // nothing reached the upstream, and nothing was tried twice
    expect(alpha.count()).toBe(0)
    const lines = await eventually(() => log.lines.filter((l) => ids.includes(l.request_id) && l.msg === 'request'), (l) => l.length === 2)
    for (const line of lines) {
      expect(line).toMatchObject({ level: 50, status: 500, attempts: 1, method: 'POST', path: '/v1/chat/completions', stream: true })
      expect(line.err).toMatchObject({ type: 'RangeError', message: expect.stringContaining('call stack') })
      expect(line.err.stack).toContain('RangeError')
    }
    const next = await chat(proxy.url, key, 'm')
    expect(next.status).toBe(200)
    expect(next.headers.get('x-proxy-attempts')).toBe('1')
    // (the failed attempts still show among alpha's errors in the live figures, as any failed attempt does)
    expect(await alphaCircuits(proxy, data.dir)).toMatchObject({ provider: 'closed', key: 'closed', keyHealth: 'ok' })
    // the upstream's own failures still count: a dead upstream still opens the circuit
    alpha.fail({ reset: true })
    for (let i = 0; i < 2; i++) expect((await chat(proxy.url, key, 'm')).status).toBe(502)
    expect((await alphaCircuits(proxy, data.dir)).provider).toBe('open')
  })
})

describe('the nesting limit', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string
  let token: string

  beforeAll(async () => {
    key = await mockModel(data.dir)
    proxy = await startTestProxy(data.dir)
    token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('takes 64 levels and refuses 65, naming the limit and how to raise it', async () => {
    expect((await post(proxy.url, key, nested(63))).status).toBe(200)
    const res = await post(proxy.url, key, nested(64))
    expect(res.status).toBe(400)
    const { error } = await readJson(res)
    expect(error).toMatchObject({ type: 'invalid_request_error', code: 'json_too_deep' })
    expect(error.message).toContain('64')
    expect(error.message).toContain('PROXY_MAX_JSON_DEPTH')
    expect(error.message).toContain('--max-json-depth')
  })

  it('does not count brackets inside strings, escaped quotes included', async () => {
    const content = `say "${'['.repeat(500)}{{{ \\" and ${'{'.repeat(500)}`
    const res = await post(proxy.url, key, JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }))
    expect(res.status).toBe(200)
    // a string that ends in an escaped backslash ends there: the nesting after it still counts
    const after = await post(proxy.url, key, `{"model":"m","messages":[{"role":"user","content":${JSON.stringify('x\\')}}],"x":${'['.repeat(70)}${']'.repeat(70)}}`)
    expect(after.status).toBe(400)
    expect((await readJson(after)).error.code).toBe('json_too_deep')
  })

  it('applies to the admin API too', async () => {
    const deep = `{"model":"x","targets":${'['.repeat(100)}${']'.repeat(100)}}`
    const res = await fetch(`${proxy.url}/admin/v1/routes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: deep })
    expect(res.status).toBe(400)
    expect((await readJson(res)).error.code).toBe('json_too_deep')
  })

  it('refuses 9.5 MB of brackets at once, and /health keeps answering meanwhile', async () => {
    const n = Math.floor((9.5 * 1024 * 1024) / 2)
    const body = '['.repeat(n) + ']'.repeat(n)
    let done = false
    let longest = 0
    let last = performance.now()
    const poller = (async () => {
      while (!done) {
        expect((await fetch(`${proxy.url}/health`)).status).toBe(200)
        const now = performance.now()
        longest = Math.max(longest, now - last)
        last = now
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    const res = await post(proxy.url, key, body)
    done = true
    await poller
    expect(res.status).toBe(400)
    expect((await readJson(res)).error.code).toBe('json_too_deep')
    // JSON.parse alone took 6-8 s on this body
    expect(longest).toBeLessThan(1000)
  })
})

describe('the nesting limit of `proxy serve`', () => {
  const data = tempDataDir()
  let key: string

  beforeAll(async () => {
    assertBuilt()
    key = await mockModel(data.dir)
  })
  afterAll(() => data.cleanup())

  it('is set by --max-json-depth over PROXY_MAX_JSON_DEPTH', async () => {
    for (const [args, limit] of [
      [['--max-json-depth', '3'], 3],
      [[], 5],
    ] as const) {
      const serve = await spawnServe(data.dir, { PROXY_MAX_JSON_DEPTH: '5' }, [...args])
      try {
        expect((await post(serve.url, key, nested(limit - 1))).status).toBe(200)
        const refused = await post(serve.url, key, nested(limit))
        expect(refused.status).toBe(400)
        expect((await readJson(refused)).error.message).toContain(`more than ${limit} levels`)
      } finally {
        await serve.stop()
      }
    }
  })
})

describe('client strings in answers and log lines are capped', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string
  let log: Awaited<ReturnType<typeof captureLogger>>

  beforeAll(async () => {
    key = await mockModel(data.dir)
    log = await captureLogger()
    proxy = await startTestProxy(data.dir, { logger: log.logger })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  const lineOf = (id: string) => eventually(() => log.lines.find((l) => l.request_id === id && l.msg === 'request'), (l) => l !== undefined)

  it('a 5 MB model name: a short 404 and a short log line', async () => {
    const model = 'm'.repeat(5 * 1024 * 1024)
    const res = await post(proxy.url, key, JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }))
    expect(res.status).toBe(404)
    const { error } = await readJson(res)
    expect(error.code).toBe('model_not_found')
    expect(error.message.length).toBeLessThan(600)
    expect(error.message).toContain(`${'m'.repeat(256)}…(${model.length - 256} more characters)`)
    const line = await lineOf(res.headers.get('x-request-id')!)
    expect(JSON.stringify(line).length).toBeLessThan(2000)
    expect(line!.model).toBe(`${'m'.repeat(256)}…(${model.length - 256} more characters)`)
  })

  it('a long path: a short 404 and a short log line', async () => {
    const long = `/v1/${'p'.repeat(8000)}`
    const res = await fetch(`${proxy.url}${long}`, { headers: { authorization: `Bearer ${key}` } })
    expect(res.status).toBe(404)
    const { error } = await readJson(res)
    expect(error.message.length).toBeLessThan(600)
    expect(error.message).toContain('more characters)')
    const line = await lineOf(res.headers.get('x-request-id')!)
    expect(JSON.stringify(line).length).toBeLessThan(2000)
    expect(line!.path).toMatch(/^\/v1\/p+…\(\d+ more characters\)$/)
  })
})

describe('validation errors say what is wrong', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string

  beforeAll(async () => {
    key = await mockModel(data.dir)
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  const errorFor = async (body: unknown) => {
    const res = await post(proxy.url, key, JSON.stringify(body))
    expect(res.status).toBe(400)
    return (await readJson(res)).error
  }
  const hi = [{ role: 'user', content: 'hi' }]

  it('a wrong type is a type error naming the parameter and the expected type', async () => {
    expect(await errorFor({ model: 123, messages: hi })).toEqual({ type: 'invalid_request_error', code: 'invalid_type', param: 'model', message: "Invalid type for 'model': expected a string, got a number." })
    expect(await errorFor({ model: 'm', messages: hi, temperature: 'hot' })).toMatchObject({ code: 'invalid_type', param: 'temperature', message: "Invalid type for 'temperature': expected a number, got a string." })
    expect(await errorFor({ model: null, messages: hi })).toMatchObject({ code: 'invalid_type', param: 'model', message: "Invalid type for 'model': expected a string, got null." })
    expect(await errorFor({ model: 'm', messages: 'hi' })).toMatchObject({ code: 'invalid_type', param: 'messages', message: "Invalid type for 'messages': expected an array, got a string." })
    expect(await errorFor({ model: 'm', messages: [{ role: 'user', content: 5 }] })).toMatchObject({
      code: 'invalid_type',
      param: 'messages[0].content',
      message: "Invalid type for 'messages[0].content': expected a string or an array, got a number.",
    })
  })

  it("a block or item whose type names an Object member ('constructor', '__proto__') is an unknown type, not a 500", async () => {
    const headers = { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }
    const messages = await fetch(`${proxy.url}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'constructor' }] }] }),
    })
    expect(messages.status).toBe(400)
    expect((await readJson(messages)).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('constructor') })
    const responses = await fetch(`${proxy.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: [{ type: '__proto__' }] }),
    })
    expect(responses.status).toBe(400)
    expect((await readJson(responses)).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('__proto__') })
  })

  it('a parameter that is truly absent is still a missing one', async () => {
    expect(await errorFor({ messages: hi })).toEqual({ type: 'invalid_request_error', code: 'missing_required_parameter', param: 'model', message: "Missing required parameter: 'model'." })
    expect(await errorFor({ model: 'm', messages: [{ content: 'hi' }] })).toMatchObject({ code: 'missing_required_parameter', param: 'messages[0].role' })
  })
})

describe('an admin 500 is explained in the log', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let log: Awaited<ReturnType<typeof captureLogger>>

  beforeAll(async () => {
    log = await captureLogger()
    proxy = await startTestProxy(data.dir, { logger: log.logger })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('logs the error, its stack, the request id, method and path at error level', async () => {
    proxy.liveStats.report = () => {
      throw new TypeError('the live windows broke')
    }
    const token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
    const res = await fetch(`${proxy.url}/admin/v1/stats`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'admin-boom-1' } })
    expect(res.status).toBe(500)
    const { error } = await readJson(res)
    expect(error).toMatchObject({ type: 'server_error', code: 'internal_error' })
    expect(error.message).toContain('admin-boom-1')
    expect(error.message).not.toContain('live windows')
    const line = await eventually(() => log.lines.find((l) => l.request_id === 'admin-boom-1'), (l) => l !== undefined)
    expect(line).toMatchObject({ level: 50, method: 'GET', path: '/admin/v1/stats', status: 500 })
    expect(line!.err).toMatchObject({ type: 'TypeError', message: 'the live windows broke' })
    expect(line!.err.stack).toMatch(/TypeError: the live windows broke\n\s+at /)
  })
})

describe('odd paths and methods', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string
  let adminKey: string

  beforeAll(async () => {
    key = await mockModel(data.dir)
    adminKey = await addClient(data.dir, 'ops', ['--role', 'admin'])
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('serves POST /v1/chat/completions/ (trailing slash) as the route without it', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(res.status).toBe(200)
    expect((await readJson(res)).object).toBe('chat.completion')
    const embed = await fetch(`${proxy.url}/v1/embeddings/`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', input: 'hi' }) })
    expect(embed.status).toBe(200)
  })

  it('answers HEAD like GET, without a body', async () => {
    const head = (route: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        httpRequest(`${proxy.url}${route}`, { method: 'HEAD', headers }, (res) => {
          let body = ''
          res.on('data', (d) => (body += d))
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
        })
          .on('error', reject)
          .end()
      })
    for (const route of ['/', '/health', '/readyz']) {
      const res = await head(route)
      expect(res.status, route).toBe(200)
      expect(res.body).toBe('')
    }
    const models = await head('/v1/models', { authorization: `Bearer ${key}` })
    expect(models.status).toBe(200)
    expect(models.headers['content-type']).toMatch(/^application\/json/)
    expect(models.body).toBe('')
    expect((await head('/v1/models')).status).toBe(401)
  })

  it('checks the admin key before saying whether an admin path exists', async () => {
    const call = (route: string, method: string, auth?: string) => fetch(`${proxy.url}/admin/v1${route}`, { method, headers: auth ? { authorization: `Bearer ${auth}` } : {} })
    for (const [route, method] of [
      ['/no-such-thing', 'GET'],
      ['/providers/x/y/z', 'DELETE'],
      ['/providers', 'PATCH'],
    ] as const) {
      expect((await call(route, method)).status, `${method} ${route} without a key`).toBe(401)
      expect((await call(route, method, key)).status, `${method} ${route} with a user key`).toBe(403)
    }
    expect((await call('/no-such-thing', 'GET', adminKey)).status).toBe(404)
    expect((await call('/providers', 'PATCH', adminKey)).status).toBe(405)
  })
})

describe('content capture', () => {
  const data = tempDataDir()
  let alpha: FaultUpstream
  let proxy: RunningProxy
  let key: string

  beforeAll(async () => {
    alpha = await startFaultUpstream('alpha')
    await addProvider(data.dir, 'alpha', alpha, ['a1'])
    await addRoute(data.dir, 'm', ['alpha/up'])
    key = await addClient(data.dir, 'app', ['--capture'])
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    await alpha.close()
    data.cleanup()
  })

  it('keeps no configured upstream key in the captured bodies', async () => {
    const upstreamKey = secret('alpha', 'a1')
    const res = await post(proxy.url, key, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `is ${upstreamKey} still valid?` }] }), { 'x-request-id': 'pasted-key-1' })
    expect(res.status).toBe(200)
    // the fake upstream names the key it was called with, so the answer carries it too
    expect(await res.text()).toContain(upstreamKey)
    const shown = await eventually(() => cli(data.dir, ['audit', 'show', 'pasted-key-1', '--json']), (r) => r.code === 0)
    const row = JSON.parse(shown.stdout) as { request_body: string; response_body: string }
    expect(row.request_body).toContain('is [redacted] still valid?')
    expect(row.response_body).toContain('[redacted]')
    expect(shown.stdout).not.toContain(upstreamKey)
  })
})
