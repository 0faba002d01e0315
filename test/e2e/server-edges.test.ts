/**
 * The HTTP edge through plain fetch: bad bodies, limits, methods, paths, auth states, request ids,
 * health, the empty-store hint and live config reload.
 */
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import path from 'node:path'
import { SQLite } from '../../src/store/sqlite-driver.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

/** Response bodies in tests are checked field by field; `unknown` would need a cast at every use. */
const readJson = (res: Response): Promise<any> => res.json()

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

async function expectOpenAIError(res: Response, status: number): Promise<ErrorBody['error']> {
  expect(res.status).toBe(status)
  expect(res.headers.get('content-type')).toMatch(/^application\/json/)
  expect(res.headers.get('x-request-id')).toMatch(/^\S+$/)
  const body = (await readJson(res)) as ErrorBody
  expect(Object.keys(body)).toEqual(['error'])
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
  expect(typeof body.error.message).toBe('string')
  expect(body.error.message.length).toBeGreaterThan(10)
  return body.error
}

/** A raw request with a chunked body (no content-length), which fetch cannot be made to send reliably. */
function chunkedPost(url: string, headers: Record<string, string>, chunks: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked', 'content-type': 'application/json' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
      res.on('error', reject)
    })
    req.on('error', (err) => reject(err))
    const write = (i: number) => {
      if (i === chunks.length) return req.end()
      req.write(chunks[i], () => setImmediate(() => write(i + 1)))
    }
    write(0)
  })
}

describe('the HTTP edge', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string
  let narrowKey: string
  const auth = () => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' })
  const chat = (body: unknown, headers: Record<string, string> = auth()) =>
    fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const hello = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/small'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'other-model', '--target', 'mock/other'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    narrowKey = keyFrom((await cli(data.dir, ['clients', 'add', 'narrow', '--models', 'gpt-4o-mini'])).stdout)
    proxy = await startTestProxy(data.dir, { maxBodyBytes: 2048 })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('serves a valid request (the baseline for everything below)', async () => {
    const res = await chat(hello)
    expect(res.status).toBe(200)
    expect((await readJson(res)).object).toBe('chat.completion')
  })

  it('answers malformed JSON with 400 invalid_json', async () => {
    const error = await expectOpenAIError(await chat('{"model": "gpt-4o-mini", "messages": ['), 400)
    expect(error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json', param: null })
  })

  it('names a missing model in param', async () => {
    const error = await expectOpenAIError(await chat({ messages: hello.messages }), 400)
    expect(error).toMatchObject({ type: 'invalid_request_error', param: 'model' })
    expect(error.message).toContain('model')
  })

  it('names a wrong-typed field in param', async () => {
    const error = await expectOpenAIError(await chat({ ...hello, temperature: 'hot' }), 400)
    expect(error).toMatchObject({ type: 'invalid_request_error', param: 'temperature' })
  })

  it('refuses a body over the limit with 413, declared by content-length', async () => {
    const big = { ...hello, messages: [{ role: 'user', content: 'x'.repeat(4000) }] }
    const error = await expectOpenAIError(await chat(big), 413)
    expect(error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' })
    expect(error.message).toContain('2048')
  })

  it('refuses a chunked body over the limit with 413', async () => {
    const text = JSON.stringify({ ...hello, messages: [{ role: 'user', content: 'y'.repeat(6000) }] })
    const chunks = text.match(/[\s\S]{1,500}/g)!
    const res = await chunkedPost(`${proxy.url}/v1/chat/completions`, { authorization: `Bearer ${key}` }, chunks)
    expect(res.status).toBe(413)
    expect(JSON.parse(res.body).error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' })
  })

  it('accepts a chunked body under the limit', async () => {
    const text = JSON.stringify(hello)
    const res = await chunkedPost(`${proxy.url}/v1/chat/completions`, { authorization: `Bearer ${key}` }, [text.slice(0, 10), text.slice(10)])
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body).object).toBe('chat.completion')
  })

  it('answers a wrong method with 405 and an allow header', async () => {
    const get = await fetch(`${proxy.url}/v1/chat/completions`, { headers: auth() })
    expect(get.headers.get('allow')).toBe('POST')
    expect(await expectOpenAIError(get, 405)).toMatchObject({ code: 'method_not_allowed' })
    const del = await fetch(`${proxy.url}/v1/models`, { method: 'DELETE', headers: auth() })
    expect(del.headers.get('allow')).toBe('GET')
    await expectOpenAIError(del, 405)
    const put = await fetch(`${proxy.url}/v1/embeddings`, { method: 'PUT', headers: auth(), body: '{}' })
    expect(put.headers.get('allow')).toBe('POST')
    await expectOpenAIError(put, 405)
  })

  it('answers an unknown path with 404 in OpenAI shape', async () => {
    for (const p of ['/v1/nope', '/v2/chat/completions']) {
      const error = await expectOpenAIError(await fetch(`${proxy.url}${p}`, { headers: auth() }), 404)
      expect(error.type).toBe('invalid_request_error')
      expect(error.message).toContain(p)
      // the hint names every API served, Anthropic's too
      expect(error.message).toContain('responses')
      expect(error.message).toContain('/v1/messages')
    }
    // the base URL itself (Claude Code probes it at start) answers, with the same directions
    const root = await fetch(`${proxy.url}/`)
    expect(root.status).toBe(200)
    const body = (await root.json()) as { status: string; message: string }
    expect(body.status).toBe('ok')
    expect(body.message).toContain('/v1/messages')
  })

  it('answers 401 invalid_api_key without a key or with a wrong one', async () => {
    const none = await expectOpenAIError(await chat(hello, { 'content-type': 'application/json' }), 401)
    expect(none).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' })
    const wrong = await expectOpenAIError(await chat(hello, { authorization: 'Bearer sk-proxy-not-a-key', 'content-type': 'application/json' }), 401)
    expect(wrong.code).toBe('invalid_api_key')
    expect(wrong.message).not.toContain('sk-proxy-not-a-key')
  })

  it('accepts the key in an api-key header too', async () => {
    const res = await chat(hello, { 'api-key': key, 'content-type': 'application/json' })
    expect(res.status).toBe(200)
  })

  it('answers 403 for a model the client may not use', async () => {
    const res = await chat({ ...hello, model: 'other-model' }, { authorization: `Bearer ${narrowKey}`, 'content-type': 'application/json' })
    const error = await expectOpenAIError(res, 403)
    expect(error).toMatchObject({ type: 'permission_error' })
    expect(error.message).toContain('other-model')
    const allowed = await chat(hello, { authorization: `Bearer ${narrowKey}`, 'content-type': 'application/json' })
    expect(allowed.status).toBe(200)
  })

  it('rejects a revoked key within a second of the CLI command', async () => {
    const doomed = keyFrom((await cli(data.dir, ['clients', 'add', 'doomed'])).stdout)
    const headers = { authorization: `Bearer ${doomed}`, 'content-type': 'application/json' }
    await eventually(async () => (await chat(hello, headers)).status, (s) => s === 200)
    expect((await cli(data.dir, ['clients', 'revoke', 'doomed'])).code).toBe(0)
    const revokedAt = Date.now()
    await eventually(async () => (await chat(hello, headers)).status, (s) => s === 401, 1000)
    expect(Date.now() - revokedAt).toBeLessThan(1000)
    const error = await expectOpenAIError(await chat(hello, headers), 401)
    expect(error.code).toBe('invalid_api_key')
    expect(error.message).toContain('revoked')
  })

  it('rejects an expired key', async () => {
    const soon = keyFrom((await cli(data.dir, ['clients', 'add', 'short-lived', '--expires', '1s'])).stdout)
    const headers = { authorization: `Bearer ${soon}`, 'content-type': 'application/json' }
    // valid at first, then refused once the time has passed, with no store change in between
    await eventually(async () => (await chat(hello, headers)).status, (s) => s === 200)
    await eventually(async () => (await chat(hello, headers)).status, (s) => s === 401, 2500)
    const error = await expectOpenAIError(await chat(hello, headers), 401)
    expect(error.code).toBe('invalid_api_key')
    expect(error.message).toContain('expired')

    // and one whose expiry was already past when the server loaded it
    const old = keyFrom((await cli(data.dir, ['clients', 'add', 'old-one', '--expires', '30d'])).stdout)
    const db = new SQLite(path.join(data.dir, 'proxy.db'))
    db.prepare("UPDATE clients SET expires_at = '2020-01-01T00:00:00.000Z' WHERE name = 'old-one'").run()
    db.close()
    await eventually(async () => (await chat(hello, { authorization: `Bearer ${old}`, 'content-type': 'application/json' })).status, (s) => s === 401, 1000)
  })

  it('echoes a sane x-request-id and replaces one that is not', async () => {
    const sane = await chat(hello, { ...auth(), 'x-request-id': 'trace-abc.123:XYZ' })
    expect(sane.headers.get('x-request-id')).toBe('trace-abc.123:XYZ')
    const onError = await fetch(`${proxy.url}/v1/nope`, { headers: { 'x-request-id': 'err-id-1' } })
    expect(onError.status).toBe(404)
    expect(onError.headers.get('x-request-id')).toBe('err-id-1')
    for (const bad of ['has spaces in it', 'x'.repeat(500), 'semi;colon', '']) {
      const res = await chat(hello, { ...auth(), 'x-request-id': bad })
      expect(res.status).toBe(200)
      const id = res.headers.get('x-request-id')
      expect(id).toMatch(/^req_[A-Za-z0-9]+$/)
      expect(id).not.toBe(bad)
    }
    const none = await chat(hello)
    expect(none.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9]+$/)
    expect(none.headers.get('x-request-id')).not.toBe((await chat(hello)).headers.get('x-request-id'))
  })

  it('answers /health and /readyz', async () => {
    const health = await fetch(`${proxy.url}/health`)
    expect(health.status).toBe(200)
    expect(await readJson(health)).toEqual({ status: 'ok' })
    const ready = await fetch(`${proxy.url}/readyz`)
    expect(ready.status).toBe(200)
    const body = await readJson(ready)
    expect(body.status).toBe('ready')
    for (const check of ['store', 'migrations', 'config']) expect(body.checks[check]?.ok, check).toBe(true)
    expect(body.checks.migrations.detail).toMatch(/^\d{4}_/)
  })

  it('serves a model added by the CLI within a second, without a restart', async () => {
    const before = await chat({ ...hello, model: 'brand-new' })
    expect((await expectOpenAIError(before, 404)).code).toBe('model_not_found')
    expect((await cli(data.dir, ['models', 'add', 'brand-new', '--target', 'mock/fresh'])).code).toBe(0)
    const addedAt = Date.now()
    await eventually(async () => (await chat({ ...hello, model: 'brand-new' })).status, (s) => s === 200, 1000)
    expect(Date.now() - addedAt).toBeLessThan(1000)
    const res = await chat({ ...hello, model: 'brand-new' })
    expect(res.headers.get('x-proxy-model')).toBe('fresh')
    const models = await readJson(await fetch(`${proxy.url}/v1/models`, { headers: auth() }))
    expect(models.data.map((m: { id: string }) => m.id)).toContain('brand-new')
  })
})

describe('an empty store', () => {
  const data = tempDataDir()
  let proxy: RunningProxy

  beforeAll(async () => {
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('tells a caller with no client keys how to create one', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-proxy-anything', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    })
    const error = await expectOpenAIError(res, 401)
    expect(error.message).toContain('proxy clients add')
  })

  it('tells a client how to add a provider when no model is configured', async () => {
    const key = keyFrom((await cli(data.dir, ['clients', 'add', 'first'])).stdout)
    const send = () =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      })
    const res = await eventually(send, (r) => r.status !== 401, 1000)
    const error = await expectOpenAIError(res, 404)
    expect(error.code).toBe('model_not_found')
    expect(error.message).toContain('proxy providers add')
    expect(error.message).toContain('proxy models add')
    const models = await fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })
    expect(models.status).toBe(200)
    expect(await readJson(models)).toEqual({ object: 'list', data: [] })
  })
})

describe('shutdown', () => {
  it('closes promptly even when a client holds a connection it never sent a request on', async () => {
    const data = tempDataDir()
    const proxy = await startTestProxy(data.dir)
    // what HTTP clients that pre-connect (and undici after an aborted request) leave behind
    const idle = connect(proxy.port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => idle.once('connect', resolve).once('error', reject))
    const closedByServer = new Promise<void>((resolve) => idle.once('close', () => resolve()))
    try {
      const started = Date.now()
      await proxy.close()
      expect(Date.now() - started).toBeLessThan(2000)
      await closedByServer
    } finally {
      idle.destroy()
      data.cleanup()
    }
  })
})
