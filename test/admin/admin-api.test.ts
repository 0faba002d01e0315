/**
 * The admin API over real HTTP: every route, who may call it (nobody, a user key, an admin key, the
 * local admin.token), validation errors that name the field, and that a write applies at once (the
 * next proxied request already sees it, without waiting for the store poller).
 */
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

describe('admin API', () => {
  const data = tempDataDir()
  let upstream: FakeUpstream
  let proxy: RunningProxy
  let adminKey: string
  let userKey: string
  let token: string

  const call = async (method: string, route: string, body?: unknown, auth: string | null = token) => {
    const headers: Record<string, string> = {}
    if (auth) headers.authorization = `Bearer ${auth}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${proxy.url}/admin/v1${route}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) })
    const text = await res.text()
    return { status: res.status, text, json: (text ? JSON.parse(text) : null) as any }
  }
  const chat = (key: string, model: string) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    })
  const expectError = (res: { status: number; json: ErrorBody }, status: number, param: string | null, code?: string) => {
    expect(res.status).toBe(status)
    expect(Object.keys(res.json.error).sort()).toEqual(['code', 'message', 'param', 'type'])
    expect(res.json.error.param).toBe(param)
    if (code) expect(res.json.error.code).toBe(code)
  }

  beforeAll(async () => {
    upstream = await startFakeOpenAI()
    expect((await cli(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', upstream.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'up', '--label', 'main'], { stdin: 'sk-upstream-one' })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'up/gpt-4o-mini'])).code).toBe(0)
    adminKey = keyFrom((await cli(data.dir, ['clients', 'add', 'ops', '--role', 'admin'])).stdout)
    userKey = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    // A long poll interval: the tests prove writes apply without the poller.
    proxy = await startTestProxy(data.dir, { reloadPollMs: 60_000 })
    token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
  })
  afterAll(async () => {
    await proxy?.close()
    await upstream?.close()
    data.cleanup()
  })

  describe('auth', () => {
    it('refuses a call without a key with 401 in the OpenAI error shape', async () => {
      const res = await call('GET', '/providers', undefined, null)
      expectError(res, 401, null, 'invalid_api_key')
      expect(res.json.error.type).toBe('authentication_error')
      expect(res.json.error.message).toContain('admin.token')
    })

    it('refuses an unknown key with 401 and a user key with 403', async () => {
      expectError(await call('GET', '/providers', undefined, 'sk-proxy-nope'), 401, null, 'invalid_api_key')
      const user = await call('GET', '/providers', undefined, userKey)
      expectError(user, 403, null, 'admin_required')
      expect(user.json.error.type).toBe('permission_error')
    })

    it('accepts an admin client key and the local admin token', async () => {
      expect((await call('GET', '/providers', undefined, adminKey)).status).toBe(200)
      expect((await call('GET', '/providers', undefined, token)).status).toBe(200)
      expect(token).toMatch(/^proxy-local-/)
    })

    it('writes admin.token and server.json with mode 0600, pointing at this server', () => {
      for (const file of ['admin.token', 'server.json']) expect(statSync(path.join(data.dir, file)).mode & 0o777).toBe(0o600)
      const info = JSON.parse(readFileSync(path.join(data.dir, 'server.json'), 'utf8')) as { url: string; pid: number }
      expect(info.url).toBe(proxy.url)
      expect(info.pid).toBe(process.pid)
    })

    it('answers 404 for an unknown admin path and 405 for a wrong method', async () => {
      expectError(await call('GET', '/nothing-here'), 404, null, 'not_found')
      const wrong = await call('PATCH', '/providers')
      expectError(wrong, 405, null, 'method_not_allowed')
      expect(wrong.json.error.message).toContain('GET or POST')
    })
  })

  describe('providers', () => {
    it('lists, adds and removes providers', async () => {
      const listed = await call('GET', '/providers')
      expect(listed.json).toMatchObject({ object: 'list', data: [{ name: 'up', type: 'openai', keys: 1 }] })
      const added = await call('POST', '/providers', { name: 'groq', type: 'openai-compatible', preset: 'groq' })
      expect(added.status).toBe(201)
      expect(added.json).toMatchObject({ name: 'groq', type: 'openai-compatible', baseUrl: 'https://api.groq.com/openai/v1' })
      expect((await call('GET', '/providers')).json.data.map((p: { name: string }) => p.name)).toEqual(['groq', 'up'])
      expect((await call('DELETE', '/providers/groq')).json).toEqual({ object: 'provider', name: 'groq', deleted: true })
      expectError(await call('DELETE', '/providers/groq'), 404, null, 'not_found')
    })

    it('validates the body and names the field', async () => {
      expectError(await call('POST', '/providers', { type: 'openai' }), 400, 'name', 'missing_required_parameter')
      expectError(await call('POST', '/providers', { name: 'x', type: 'nope' }), 400, 'type', 'invalid_value')
      expectError(await call('POST', '/providers', { name: 'x', type: 'openai', baseUrl: 'ftp://host' }), 400, 'baseUrl', 'invalid_value')
      expectError(await call('POST', '/providers', { name: 'x', type: 'openai', colour: 'red' }), 400, 'colour', 'unknown_parameter')
      expectError(await call('POST', '/providers', { name: 'x', type: 'azure' }), 400, 'baseUrl')
      expectError(await call('POST', '/providers', { name: 'bad name', type: 'openai' }), 400, 'name')
      expectError(await call('POST', '/providers', '{not json'), 400, null, 'invalid_json')
      expectError(await call('POST', '/providers', { name: 'up', type: 'openai' }), 409, null, 'conflict')
    })

    it('changes a provider with PATCH: settings merge, a header goes with unsetSettings, keys stay', async () => {
      expect((await call('POST', '/providers', { name: 'edit-me', type: 'openai-compatible', baseUrl: 'http://127.0.0.1:1/v1', settings: { headers: { 'X-A': '1' } } })).status).toBe(201)
      const patched = await call('PATCH', '/providers/edit-me', { baseUrl: 'http://127.0.0.1:2/v1', settings: { headers: { 'X-B': '2' }, stream_usage: false } })
      expect(patched.status).toBe(200)
      expect(patched.json).toMatchObject({ name: 'edit-me', baseUrl: 'http://127.0.0.1:2/v1', settings: { headers: { 'X-A': '1', 'X-B': '2' }, stream_usage: false } })
      const unset = await call('PATCH', '/providers/edit-me', { unsetSettings: ['headers.X-A'], preset: 'groq' })
      expect(unset.json).toMatchObject({ baseUrl: 'https://api.groq.com/openai/v1', settings: { preset: 'groq', headers: { 'X-B': '2' }, stream_usage: false } })
      expect(unset.json.settings.headers).not.toHaveProperty('X-A')
      expect((await call('DELETE', '/providers/edit-me')).status).toBe(200)
    })

    it('validates a PATCH and names the field, changing nothing', async () => {
      const before = (await call('GET', '/providers')).json
      expectError(await call('PATCH', '/providers/up', { baseUrl: 'ftp://host' }), 400, 'baseUrl', 'invalid_value')
      expectError(await call('PATCH', '/providers/up', { type: 'azure' }), 400, 'type', 'unknown_parameter')
      expectError(await call('PATCH', '/providers/up', { settings: { a: 1 }, unsetSettings: ['nope'] }), 400, 'unsetSettings', 'invalid_value')
      expectError(await call('PATCH', '/providers/up', { preset: 'groq' }), 400, 'preset')
      expectError(await call('PATCH', '/providers/up', {}), 400, null)
      expectError(await call('PATCH', '/providers/ghost', { baseUrl: 'http://127.0.0.1:1/v1' }), 404, null, 'not_found')
      expect((await call('GET', '/providers')).json).toEqual(before)
      expect((await call('POST', '/providers', { name: 'az', type: 'azure', baseUrl: 'https://res.openai.azure.com' })).status).toBe(201)
      expectError(await call('PATCH', '/providers/az', { baseUrl: null }), 400, 'baseUrl', 'missing_required_parameter')
      expect((await call('DELETE', '/providers/az')).status).toBe(200)
    })

    it('applies a PATCHed base URL to the next request at once', async () => {
      const other = await startFakeOpenAI()
      try {
        expect((await call('PATCH', '/providers/up', { baseUrl: other.url })).status).toBe(200)
        expect((await chat(userKey, 'gpt-4o-mini')).status).toBe(200)
        expect(other.requests).toHaveLength(1)
      } finally {
        expect((await call('PATCH', '/providers/up', { baseUrl: upstream.url })).status).toBe(200)
        await other.close()
      }
    })

    it('refuses to remove a provider a route still uses', async () => {
      expectError(await call('DELETE', '/providers/up'), 409, null, 'conflict')
    })
  })

  describe('provider keys', () => {
    it('adds a key from the JSON body, never returns a secret, and the server uses it at once', async () => {
      const added = await call('POST', '/keys', { provider: 'up', secret: 'sk-upstream-two', label: 'second', priority: 5 })
      expect(added.status).toBe(201)
      expect(added.json).toMatchObject({ provider: 'up', label: 'second', priority: 5, state: 'active' })
      expect(added.text).not.toContain('sk-upstream-two')
      const listed = await call('GET', '/keys?provider=up')
      expect(listed.json.data.map((k: { label: string }) => k.label)).toEqual(['main', 'second'])
      expect(listed.text).not.toContain('sk-upstream')

      // Disable the first key: the very next request goes out with the new one.
      expect((await call('POST', '/keys/main/disable', { provider: 'up' })).json).toMatchObject({ label: 'main', state: 'disabled' })
      upstream.requests.length = 0
      expect((await chat(userKey, 'gpt-4o-mini')).status).toBe(200)
      expect(upstream.requests.at(-1)?.headers.authorization).toBe('Bearer sk-upstream-two')
    })

    it('rotates, enables and removes keys', async () => {
      const rotated = await call('POST', '/keys/second/rotate', { secret: 'sk-upstream-three' })
      expect(rotated.status).toBe(200)
      expect(rotated.json.key).toMatchObject({ label: 'second', state: 'active' })
      expect(rotated.json.retired).toMatchObject({ label: 'second', state: 'retired' })
      expect(rotated.text).not.toContain('sk-upstream-three')
      upstream.requests.length = 0
      expect((await chat(userKey, 'gpt-4o-mini')).status).toBe(200)
      expect(upstream.requests.at(-1)?.headers.authorization).toBe('Bearer sk-upstream-three')

      const enabled = await call('POST', '/keys/main/enable?provider=up')
      expect(enabled.json).toMatchObject({ label: 'main', state: 'active', health: 'ok' })
      expect((await call('DELETE', '/keys/second')).json).toMatchObject({ label: 'second', deleted: true })
      expect((await call('GET', '/keys')).json.data.map((k: { label: string }) => k.label)).toEqual(['main'])
      expect((await call('GET', '/keys?all=true')).json.data.map((k: { state: string }) => k.state).sort()).toEqual(['active', 'retired'])
    })

    it('validates key bodies and references', async () => {
      expectError(await call('POST', '/keys', { provider: 'up' }), 400, 'secret', 'missing_required_parameter')
      expectError(await call('POST', '/keys', { provider: 'up', secret: 'two words' }), 400, 'secret')
      expectError(await call('POST', '/keys', { provider: 'up', secret: 'sk-x', weight: 0 }), 400, 'weight', 'invalid_value')
      expectError(await call('POST', '/keys', { provider: 'nobody', secret: 'sk-x' }), 404, null, 'not_found')
      expectError(await call('POST', '/keys/ghost/disable'), 404, null, 'not_found')
      expectError(await call('POST', '/keys/main/rotate', {}), 400, 'secret')
    })
  })

  describe('clients', () => {
    it('adds a client and returns its key once; the key works at once', async () => {
      const added = await call('POST', '/clients', { name: 'ci', models: ['gpt-4o-mini'], expires: '30d', rpm: 600 })
      expect(added.status).toBe(201)
      expect(added.json).toMatchObject({ name: 'ci', role: 'user', models: ['gpt-4o-mini'], rpm: 600, status: 'active' })
      const key = added.json.key as string
      expect(key).toMatch(/^sk-proxy-/)
      expect(Date.parse(added.json.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000)
      expect((await chat(key, 'gpt-4o-mini')).status).toBe(200)
      const listed = await call('GET', '/clients')
      expect(listed.json.data.map((c: { name: string }) => c.name)).toEqual(['app', 'ci', 'ops'])
      expect(listed.text).not.toContain(key)
    })

    it('rotates and revokes: the old key stops working at once', async () => {
      const before = (await call('POST', '/clients', { name: 'temp' })).json.key as string
      const rotated = await call('POST', '/clients/temp/rotate')
      expect(rotated.status).toBe(200)
      const after = rotated.json.key as string
      expect(after).not.toBe(before)
      expect((await chat(before, 'gpt-4o-mini')).status).toBe(401)
      expect((await chat(after, 'gpt-4o-mini')).status).toBe(200)
      expect((await call('POST', '/clients/temp/revoke')).json).toMatchObject({ name: 'temp', status: 'revoked' })
      expect((await chat(after, 'gpt-4o-mini')).status).toBe(401)
      expectError(await call('POST', '/clients/nobody/revoke'), 404, null, 'not_found')
    })

    it('issues admin keys that can call the admin API', async () => {
      const key = (await call('POST', '/clients', { name: 'ops2', role: 'admin' })).json.key as string
      expect((await call('GET', '/clients', undefined, key)).status).toBe(200)
    })

    it('validates client bodies', async () => {
      expectError(await call('POST', '/clients', { name: 'x', role: 'root' }), 400, 'role', 'invalid_value')
      expectError(await call('POST', '/clients', { name: 'x', expires: 'someday' }), 400, 'expires', 'invalid_value')
      expectError(await call('POST', '/clients', { name: 'x', rpm: -1 }), 400, 'rpm', 'invalid_value')
      expectError(await call('POST', '/clients', { name: 'x', models: [] }), 400, 'models', 'invalid_value')
      expectError(await call('POST', '/clients', { name: 'app' }), 409, null, 'conflict')
    })
  })

  describe('routes', () => {
    it('adds a route (targets as strings or objects) that serves at once, lists and removes it', async () => {
      const added = await call('POST', '/routes', { model: 'team/fast', targets: ['up/gpt-4o-mini', { provider: 'up', upstreamModel: 'gpt-4o' }] })
      expect(added.status).toBe(201)
      expect(added.json).toMatchObject({ model: 'team/fast', targets: [{ provider: 'up', upstreamModel: 'gpt-4o-mini' }, { provider: 'up', upstreamModel: 'gpt-4o' }] })
      expect((await chat(userKey, 'team/fast')).status).toBe(200)
      expect((await call('GET', '/routes')).json.data.map((r: { model: string }) => r.model)).toEqual(['gpt-4o-mini', 'team/fast'])
      expect((await call('DELETE', '/routes/team/fast')).json).toEqual({ object: 'route', model: 'team/fast', deleted: true })
      const gone = await chat(userKey, 'team/fast')
      expect(gone.status).toBe(404)
      expect(((await gone.json()) as ErrorBody).error.code).toBe('model_not_found')
    })

    it('validates route bodies', async () => {
      expectError(await call('POST', '/routes', { model: 'm', targets: [] }), 400, 'targets', 'invalid_value')
      expectError(await call('POST', '/routes', { model: 'm', targets: ['nodash'] }), 400, 'targets[0]', 'invalid_value')
      expectError(await call('POST', '/routes', { model: 'm', targets: [{ provider: 'up' }] }), 400, 'targets[0]')
      expectError(await call('POST', '/routes', { model: 'm', targets: ['ghost/model'] }), 404, null, 'not_found')
      expectError(await call('POST', '/routes', { model: 'gpt-4o-mini', targets: ['up/x'] }), 409, null, 'conflict')
      expectError(await call('DELETE', '/routes/never-routed'), 404, null, 'not_found')
    })
  })

  describe('policies', () => {
    it('sets, gets, lists and removes policies', async () => {
      const set = await call('PUT', '/policies/patient', { retry: { max_attempts: 5 }, keys: { strategy: 'priority' } })
      expect(set.status).toBe(200)
      expect(set.json).toMatchObject({ name: 'patient', document: { retry: { max_attempts: 5 } } })
      expect((await call('GET', '/policies/patient')).json.document).toEqual({ retry: { max_attempts: 5 }, keys: { strategy: 'priority' } })
      expect((await call('GET', '/policies')).json.data.map((p: { name: string }) => p.name)).toEqual(['patient'])
      expect((await call('DELETE', '/policies/patient')).json).toMatchObject({ name: 'patient', deleted: true })
      expectError(await call('GET', '/policies/patient'), 404, null, 'not_found')
    })

    it('points validation errors at the field', async () => {
      const low = await call('PUT', '/policies/global', { retry: { max_attempts: 0 } })
      expectError(low, 400, 'retry.max_attempts', 'invalid_policy')
      expect(low.json.error.message).toContain('retry.max_attempts')
      expectError(await call('PUT', '/policies/global', { retry: { max_tries: 3 } }), 400, 'retry.max_tries', 'invalid_policy')
      expectError(await call('PUT', '/policies/global', { keys: { strategy: 'random' } }), 400, 'keys.strategy', 'invalid_policy')
      expectError(await call('PUT', '/policies/global', [1, 2]), 400, null)
    })
  })

  describe('circuit overrides', () => {
    it('opens, closes and resets circuits; an open provider circuit applies to the next request', async () => {
      const opened = await call('POST', '/circuits/open', { provider: 'up' })
      expect(opened.json).toEqual({ circuit: 'up', override: 'open' })
      expect((await call('GET', '/circuits?provider=up')).json.data[0]).toMatchObject({ provider: 'up', key: null, override: 'open' })
      const refused = await chat(userKey, 'gpt-4o-mini')
      expect(refused.status).toBe(503)
      expect(((await refused.json()) as ErrorBody).error.code).toBe('upstream_unavailable')

      expect((await call('POST', '/circuits/close', { provider: 'up' })).json).toEqual({ circuit: 'up', override: 'closed' })
      expect((await chat(userKey, 'gpt-4o-mini')).status).toBe(200)
      expect((await call('POST', '/circuits/reset', { provider: 'up' })).json).toEqual({ circuit: 'up', override: 'auto' })
      expect((await call('POST', '/circuits/open', { provider: 'up', key: 'main' })).json).toEqual({ circuit: 'up/main', override: 'open' })
      const keys = (await call('GET', '/circuits?provider=up&key=main')).json.data
      expect(keys).toEqual([expect.objectContaining({ key: 'main', override: 'open' })])
      await call('POST', '/circuits/reset', { provider: 'up', key: 'main' })
    })

    it('validates circuit calls', async () => {
      expectError(await call('POST', '/circuits/open', {}), 400, 'provider', 'missing_required_parameter')
      expectError(await call('POST', '/circuits/open', { provider: 'ghost' }), 404, null, 'not_found')
      expectError(await call('POST', '/circuits/open', { provider: 'up', key: 'ghost' }), 404, null, 'not_found')
      expectError(await call('GET', '/circuits?key=main'), 400, 'provider')
      expectError(await call('POST', '/circuits/explode', { provider: 'up' }), 404, null, 'not_found')
    })
  })

  describe('stats', () => {
    it('reports live figures: rates, latency, providers with circuit and keys, recent requests', async () => {
      const before = (await call('GET', '/stats')).json
      const ids: string[] = []
      for (let i = 0; i < 4; i++) {
        const res = await chat(userKey, 'gpt-4o-mini')
        expect(res.status).toBe(200)
        ids.push(res.headers.get('x-request-id')!)
      }
      const stream = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      })
      await stream.text()
      const stats = (await call('GET', '/stats')).json
      expect(stats.object).toBe('proxy.stats')
      expect(stats.totals.requests - before.totals.requests).toBe(5)
      expect(stats.window.requests).toBeGreaterThanOrEqual(5)
      expect(stats.window.latencyMs).toEqual({ p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) })
      expect(stats.window.tokens).toBeGreaterThan(0)
      expect(stats.series.requests).toHaveLength(60)
      expect(stats.activeStreams).toBe(0)
      expect(stats.draining).toBe(false)
      expect(stats.uptimeS).toBeGreaterThanOrEqual(0)
      const up = stats.providers.find((p: { name: string }) => p.name === 'up')
      expect(up).toMatchObject({ type: 'openai', circuit: { state: 'closed', override: null }, inFlight: 0 })
      expect(up.requests).toBeGreaterThanOrEqual(5)
      expect(up.keys).toEqual([expect.objectContaining({ label: 'main', health: 'ok', state: 'active', cooldownUntil: null, circuit: expect.objectContaining({ state: 'closed' }) })])
      expect(stats.recent[0]).toMatchObject({ model: 'gpt-4o-mini', provider: 'up', status: 200, stream: true })
      expect(stats.recent.slice(1, 5).map((r: { id: string }) => r.id)).toEqual(ids.reverse())
      expect(stats.recent.length).toBeLessThanOrEqual(50)
      // Polling the stats is not traffic.
      const again = (await call('GET', '/stats')).json
      expect(again.totals.requests).toBe(stats.totals.requests)
    })

    it('counts rate-limit hits', async () => {
      const limited = (await call('POST', '/clients', { name: 'slow', rpm: 1 })).json.key as string
      const before = (await call('GET', '/stats')).json.totals.rateLimited
      expect((await chat(limited, 'gpt-4o-mini')).status).toBe(200)
      const second = await chat(limited, 'gpt-4o-mini')
      expect(second.status).toBe(429)
      expect(((await second.json()) as ErrorBody).error.code).toBe('rate_limit_exceeded')
      const stats = (await call('GET', '/stats')).json
      expect(stats.totals.rateLimited - before).toBe(1)
      expect(stats.window.rateLimited).toBeGreaterThanOrEqual(1)
      expect(stats.recent[0]).toMatchObject({ status: 429, error: 'rate_limit_exceeded', client: 'slow' })
    })

    it('takes a window and validates it', async () => {
      expect((await call('GET', '/stats?window=10')).json.series.requests).toHaveLength(10)
      expectError(await call('GET', '/stats?window=0'), 400, 'window', 'invalid_value')
    })
  })
})

describe('admin token lifecycle', () => {
  it('writes a fresh token at each start and deletes both files on a clean shutdown', async () => {
    const data = tempDataDir()
    try {
      const first = await startTestProxy(data.dir)
      const token1 = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
      await first.close()
      expect(() => statSync(path.join(data.dir, 'admin.token'))).toThrow()
      expect(() => statSync(path.join(data.dir, 'server.json'))).toThrow()
      const second = await startTestProxy(data.dir)
      const token2 = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
      expect(token2).not.toBe(token1)
      // The old token is worthless against the new server.
      const res = await fetch(`${second.url}/admin/v1/stats`, { headers: { authorization: `Bearer ${token1}` } })
      expect(res.status).toBe(401)
      await second.close()
    } finally {
      data.cleanup()
    }
  })
})

describe('admin change log', () => {
  it('logs one line per write naming the action and who did it, never the secret', async () => {
    const { createLogger } = await import('../../src/telemetry/logger.js')
    const data = tempDataDir()
    const lines: string[] = []
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } })
    const proxy = await startTestProxy(data.dir, { logger })
    try {
      const token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
      const post = (route: string, body: unknown) =>
        fetch(`${proxy.url}/admin/v1${route}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect((await post('/providers', { name: 'up', type: 'openai' })).status).toBe(201)
      expect((await post('/keys', { provider: 'up', secret: 'sk-live-very-secret', label: 'main' })).status).toBe(201)
      await fetch(`${proxy.url}/admin/v1/stats`, { headers: { authorization: `Bearer ${token}` } })
      const admin = lines.map((l) => JSON.parse(l) as { event?: string; action?: string; by?: string; via?: string }).filter((l) => l.event === 'admin')
      expect(admin.map((l) => [l.action, l.by, l.via])).toEqual([
        ['providers.add', 'local', 'local-token'],
        ['keys.add', 'local', 'local-token'],
      ])
      expect(lines.join('\n')).not.toContain('sk-live-very-secret')
      expect(lines.join('\n')).not.toContain(token)
    } finally {
      await proxy.close()
      data.cleanup()
    }
  })
})
