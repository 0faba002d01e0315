/**
 * What the proxy sends upstream and how it forwards the answer: the upstream key (never the client's),
 * the rewritten model, every other parameter untouched, streams chunk by chunk, key rotation across
 * requests, aborts, fallback between keys and the errors for unreachable or refusing upstreams.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { chatChunks, startFakeOpenAI, type FakeUpstream, type RecordedRequest } from '../fakes/openai-upstream.js'
import { cli, eventually, keyFrom, sqliteOf, startTestProxy, tempDataDir } from '../helpers/proxy.js'

/** Response bodies in tests are checked field by field; `unknown` would need a cast at every use. */
const readJson = (res: Response): Promise<any> => res.json()

const SECRET_A = 'sk-upstream-AAAA1111aaaa'
const SECRET_B = 'sk-upstream-BBBB2222bbbb'

/** A port that nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function setup(dir: string, fake: FakeUpstream, secrets: string[]): Promise<string> {
  expect((await cli(dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', fake.url])).code).toBe(0)
  for (const [i, secret] of secrets.entries()) {
    const added = await cli(dir, ['keys', 'add', 'up', '--label', `k${i + 1}`], { stdin: secret + '\n' })
    expect(added.stderr).toBe('')
    expect(added.code).toBe(0)
  }
  expect((await cli(dir, ['models', 'add', 'my-model', '--target', 'up/upstream-model-x'])).code).toBe(0)
  const client = await cli(dir, ['clients', 'add', 'app'])
  expect(client.code).toBe(0)
  return keyFrom(client.stdout)
}

function post(proxy: RunningProxy, key: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  })
}

const chatPaths = (fake: FakeUpstream) => fake.requests.filter((r) => r.path === '/v1/chat/completions')
const authOf = (r: RecordedRequest) => r.headers.authorization

describe('forwarding to an OpenAI upstream, one key', () => {
  const data = tempDataDir()
  let fake: FakeUpstream
  let proxy: RunningProxy
  let clientKey: string

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    clientKey = await setup(data.dir, fake, [SECRET_A])
    proxy = await startTestProxy(data.dir)
  })
  afterEach(() => {
    fake.respond(() => undefined)
    fake.requests.length = 0
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  it("sends the provider key as the bearer token, never the client's key", async () => {
    const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: 'hi' }] })
    expect(res.status).toBe(200)
    const [seen] = chatPaths(fake)
    expect(seen).toBeDefined()
    expect(seen!.headers.authorization).toBe(`Bearer ${SECRET_A}`)
    expect(JSON.stringify(seen!.headers)).not.toContain(clientKey)
    expect(seen!.headers['api-key']).toBeUndefined()
    expect(res.headers.get('x-proxy-provider')).toBe('up')
    expect(res.headers.get('x-proxy-model')).toBe('upstream-model-x')
  })

  const params = {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'What is the weather?' }] },
    ],
    temperature: 0.3,
    top_p: 0.9,
    max_completion_tokens: 77,
    seed: 42,
    user: 'end-user-17',
    stop: ['\n\n', 'END'],
    presence_penalty: 0.5,
    logit_bias: { '50256': -100 },
    tools: [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
          strict: true,
        },
      },
    ],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    parallel_tool_calls: false,
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } },
    },
    metadata: { team: 'x' },
    foo_bar: { x: 1 },
  }

  it("answers with the upstream's own bytes, formatting and escapes included, and still counts its usage", async () => {
    const text = '{\n  "id": "chatcmpl-raw", "object": "chat.completion", "created": 1700000000, "model": "upstream-model-x",\n  "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\\u00e9 \u2713 \\"usage\\""}, "finish_reason": "stop"}],\n  "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, "x_vendor": [1, 2.50]\n}\n'
    fake.respond(() => ({ kind: 'raw', text }))
    const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: 'hi' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    const got = await res.text()
    expect(got).toBe(text)
    expect(JSON.parse(got).choices[0].message.content).toBe('café ✓ "usage"')
    await proxy.audit.flush()
    const rows = sqliteOf(proxy.store).sqlite.prepare("SELECT total_tokens FROM audit WHERE model = 'my-model' ORDER BY id DESC LIMIT 1").all() as Array<{ total_tokens: number }>
    expect(rows[0]?.total_tokens).toBe(7)
  })

  it("streams the upstream's own event data, and serialises a chunk again only when it has to", async () => {
    const head = '"object":"chat.completion.chunk","created":1700000000,"model":"upstream-model-x"'
    const first = `{"id":"chatcmpl-s", ${head},"choices":[{"index":0,"delta":{"role":"assistant","content":"caf\\u00e9"},"finish_reason":null}],"x_vendor":[1, 2.50]}`
    const text = [
      `data: ${first}`,
      // one event over two data lines: the client must get it on one
      `data: {"id":"chatcmpl-s",${head},\ndata: "choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}`,
      // usage riding on a chunk with choices: the client did not ask for usage, so it is removed
      `data: {"id":"chatcmpl-s",${head},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
      'data: [DONE]',
      '',
    ].join('\n\n')
    fake.respond(() => ({ kind: 'raw-sse', text }))
    const res = await post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'hi' }] })
    expect(res.status).toBe(200)
    const events = (await res.text()).split('\n\n').filter(Boolean)
    expect(events).toHaveLength(4)
    expect(events[0]).toBe(`data: ${first}`)
    expect(JSON.parse(events[0]!.slice(6)).choices[0].delta.content).toBe('café')
    expect(events[1]).not.toContain('\n')
    expect(JSON.parse(events[1]!.slice(6)).choices[0].delta.content).toBe('!')
    const last = JSON.parse(events[2]!.slice(6))
    expect(last.choices[0].finish_reason).toBe('stop')
    expect(last).not.toHaveProperty('usage')
    expect(events[3]).toBe('data: [DONE]')
    await proxy.audit.flush()
    const rows = sqliteOf(proxy.store).sqlite.prepare("SELECT total_tokens FROM audit WHERE model = 'my-model' AND stream = 1 ORDER BY id DESC LIMIT 1").all() as Array<{ total_tokens: number }>
    expect(rows[0]?.total_tokens).toBe(5)
  })

  it('rewrites only model and passes every other parameter through untouched', async () => {
    const sent = { model: 'my-model', stream: false, ...params }
    const res = await post(proxy, clientKey, sent)
    expect(res.status).toBe(200)
    const [seen] = chatPaths(fake)
    expect(seen!.body.model).toBe('upstream-model-x')
    const { model: _m, ...restSeen } = seen!.body
    const { model: _s, ...restSent } = sent
    expect(restSeen).toStrictEqual(restSent)
  })

  it('passes parameters through on a stream too, adding only stream usage', async () => {
    const sent = { model: 'my-model', stream: true, ...params }
    const res = await post(proxy, clientKey, sent)
    expect(res.status).toBe(200)
    await res.text()
    const [seen] = chatPaths(fake)
    const { model, stream_options, ...restSeen } = seen!.body
    expect(model).toBe('upstream-model-x')
    expect(stream_options).toEqual({ include_usage: true })
    const { model: _s, ...restSent } = sent
    expect(restSeen).toStrictEqual(restSent)
  })

  it('keeps the client stream_options it sent, next to include_usage', async () => {
    const res = await post(proxy, clientKey, { model: 'my-model', stream: true, stream_options: { include_usage: false, include_obfuscation: false }, messages: [{ role: 'user', content: 'x' }] })
    await res.text()
    expect(chatPaths(fake)[0]!.body.stream_options).toEqual({ include_usage: true, include_obfuscation: false })
  })

  it('forwards a stream chunk by chunk as the upstream produces it', async () => {
    const pieces = ['one', ' two', ' three', ' four', ' five']
    fake.respond((req) => (req.body?.stream ? { kind: 'sse', events: chatChunks(req.body.model, pieces), gapMs: 100 } : undefined))
    const started = performance.now()
    const res = await post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'go' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const arrivals: number[] = []
    let text = ''
    let buffer = ''
    const decoder = new TextDecoder()
    for await (const bytes of res.body!) {
      buffer += decoder.decode(bytes, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (!event.startsWith('data: ')) continue
        arrivals.push(performance.now() - started)
        const payload = event.slice(6)
        if (payload !== '[DONE]') text += JSON.parse(payload).choices[0]?.delta?.content ?? ''
      }
    }
    const total = performance.now() - started
    expect(text).toBe(pieces.join(''))
    // 8 upstream events 100 ms apart: the first must reach the client long before the last was sent.
    expect(total).toBeGreaterThan(600)
    expect(arrivals[0]!).toBeLessThan(total - 150)
    // and they keep arriving spread over time, not in one burst at the end
    expect(arrivals.at(-2)! - arrivals[0]!).toBeGreaterThan(400)
  })

  it('aborts the upstream request when the client gives up on an upstream that hangs after its headers', async () => {
    fake.respond(() => ({ kind: 'sse', events: chatChunks('m', ['a']), hangAfter: 0 }))
    const before = fake.aborted()
    const controller = new AbortController()
    const pending = post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal })
    await eventually(() => chatPaths(fake).length, (n) => n === 1)
    controller.abort()
    await expect(pending).rejects.toThrow()
    await eventually(() => fake.aborted(), (n) => n === before + 1, 2000)
    // and it is not retried on anything after the client left
    expect(chatPaths(fake)).toHaveLength(1)
  })

  it('aborts the upstream request when the client disconnects mid-stream', async () => {
    fake.respond(() => ({ kind: 'sse', events: chatChunks('m', Array.from({ length: 50 }, (_, i) => `p${i}`)), gapMs: 50 }))
    const before = fake.aborted()
    const controller = new AbortController()
    const res = await post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(first.done).toBe(false)
    controller.abort()
    await eventually(() => fake.aborted(), (n) => n === before + 1, 2000)
  })

  it('gives up on an upstream that hangs after its headers once the policy timeout passes, and aborts it', async () => {
    expect((await cli(data.dir, ['policy', 'set', 'global', '--file', '-'], { stdin: JSON.stringify({ timeouts_ms: { total: 400 } }) })).code).toBe(0)
    try {
      await eventually(() => proxy.config.current().globalPolicy.timeouts_ms.total, (t) => t === 400)
      fake.respond(() => ({ kind: 'sse', events: chatChunks('m', ['a']), hangAfter: 0 }))
      const before = fake.aborted()
      const started = Date.now()
      const res = await post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'x' }] })
      expect(res.status).toBe(504)
      expect((await readJson(res)).error).toMatchObject({ type: 'timeout_error', code: 'upstream_timeout' })
      expect(Date.now() - started).toBeLessThan(5000)
      // every attempt (timeouts may be retried) was aborted upstream, none left hanging
      const attempts = chatPaths(fake).length
      expect(attempts).toBeGreaterThanOrEqual(1)
      expect(attempts).toBeLessThanOrEqual(3)
      await eventually(() => fake.aborted(), (n) => n === before + attempts, 2000)
    } finally {
      expect((await cli(data.dir, ['policy', 'set', 'global', '--file', '-'], { stdin: '{}' })).code).toBe(0)
      await eventually(() => proxy.config.current().globalPolicy.timeouts_ms.total, (t) => t !== 400)
    }
  })

  it('ends a stream with an OpenAI error event when the upstream fails after the first chunk', async () => {
    const [first, second] = chatChunks('upstream-model-x', ['partial'])
    fake.respond(() => ({ kind: 'sse', events: [first, second, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }], done: false }))
    const res = await post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'x' }] })
    expect(res.status).toBe(200)
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6))
    expect(JSON.parse(events[1]!).choices[0].delta.content).toBe('partial')
    const last = JSON.parse(events.at(-1)!)
    expect(Object.keys(last)).toEqual(['error'])
    expect(last.error).toMatchObject({ type: 'upstream_error', param: null })
    expect(last.error.message).toContain('processing your request')
    expect(events).not.toContain('[DONE]')
    // no fallback once the client has seen bytes
    expect(chatPaths(fake)).toHaveLength(1)
  })

  it('does not retry a 400 from the upstream and passes its message on', async () => {
    fake.respond(() => ({ kind: 'json', status: 400, body: { error: { message: 'Invalid value for temperature.', type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' } } }))
    const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: 'x' }] })
    expect(res.status).toBe(400)
    const body = await readJson(res)
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' })
    expect(body.error.message).toContain('Invalid value for temperature.')
    expect(chatPaths(fake)).toHaveLength(1)
  })
})

describe('forwarding with two keys', () => {
  const data = tempDataDir()
  let fake: FakeUpstream
  let proxy: RunningProxy
  let clientKey: string

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    clientKey = await setup(data.dir, fake, [SECRET_A, SECRET_B])
    proxy = await startTestProxy(data.dir)
  })
  afterEach(() => {
    fake.respond(() => undefined)
    fake.requests.length = 0
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  it('uses both keys round-robin', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: `n${i}` }] })
      expect(res.status).toBe(200)
      expect(res.headers.get('x-proxy-attempts')).toBe('1')
    }
    const used = chatPaths(fake).map(authOf)
    expect(used).toHaveLength(4)
    expect(used.filter((a) => a === `Bearer ${SECRET_A}`)).toHaveLength(2)
    expect(used.filter((a) => a === `Bearer ${SECRET_B}`)).toHaveLength(2)
  })

  it('falls back to the other key when the first answers 5xx', async () => {
    let n = 0
    fake.respond(() => (n++ === 0 ? { kind: 'json', status: 503, body: { error: { message: 'overloaded', type: 'server_error', param: null, code: null } } } : undefined))
    const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: 'x' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-proxy-attempts')).toBe('2')
    expect((await readJson(res)).choices[0].message.content).toBe('Hello from fake')
    const used = chatPaths(fake).map(authOf)
    expect(used).toHaveLength(2)
    expect(new Set(used)).toEqual(new Set([`Bearer ${SECRET_A}`, `Bearer ${SECRET_B}`]))
  })

  it('falls back to the other key when the first stream fails before its first chunk', async () => {
    let n = 0
    fake.respond(() => (n++ === 0 ? { kind: 'reset' } : undefined))
    const res = await post(proxy, clientKey, { model: 'my-model', stream: true, messages: [{ role: 'user', content: 'x' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-proxy-attempts')).toBe('2')
    expect(await res.text()).toContain('data: [DONE]')
  })

  it('does not retry a 400 on the other key', async () => {
    fake.respond(() => ({ kind: 'json', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } } }))
    const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: 'x' }] })
    expect(res.status).toBe(400)
    expect(chatPaths(fake)).toHaveLength(1)
  })

  it('reports the last failure, in OpenAI shape, when every key fails', async () => {
    fake.respond(() => ({ kind: 'json', status: 500, body: { error: { message: 'boom', type: 'server_error', param: null, code: null } } }))
    const res = await post(proxy, clientKey, { model: 'my-model', messages: [{ role: 'user', content: 'x' }] })
    expect(res.status).toBe(502)
    const body = await readJson(res)
    expect(body.error).toMatchObject({ type: 'upstream_error', code: 'upstream_unavailable' })
    expect(typeof body.error.message).toBe('string')
    expect(body.error.param).toBeNull()
    // both keys tried, and no more attempts than the default policy's retry.max_attempts (3)
    const used = chatPaths(fake).map(authOf)
    expect(new Set(used)).toEqual(new Set([`Bearer ${SECRET_A}`, `Bearer ${SECRET_B}`]))
    expect(used.length).toBeLessThanOrEqual(3)
  })
})

describe('an unreachable upstream', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let clientKey: string

  beforeAll(async () => {
    const port = await closedPort()
    expect((await cli(data.dir, ['providers', 'add', 'gone', '--type', 'openai', '--base-url', `http://127.0.0.1:${port}/v1`])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'gone'], { stdin: SECRET_A })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'm', '--target', 'gone/x'])).code).toBe(0)
    clientKey = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('answers 502 in OpenAI error shape, streamed or not', async () => {
    for (const stream of [false, true]) {
      const res = await post(proxy, clientKey, { model: 'm', stream, messages: [{ role: 'user', content: 'x' }] })
      expect(res.status).toBe(502)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      const body = await readJson(res)
      expect(Object.keys(body)).toEqual(['error'])
      expect(body.error).toMatchObject({ type: 'upstream_error', code: 'upstream_unreachable', param: null })
      expect(body.error.message).toContain("provider 'gone'")
      expect(body.error.message).not.toContain(SECRET_A)
    }
  })
})
