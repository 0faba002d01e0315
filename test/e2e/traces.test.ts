/**
 * Traces through the real server: a fake OTLP collector on loopback receives the spans of each request
 * (official SDKs as clients, fault-injecting fake upstreams), and the tree, attributes, propagation,
 * content capture and secrecy are checked on what it received. A dead collector leaves requests alone.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { startOtlpCollector, type CollectedSpan, type OtlpCollector } from '../fakes/otlp-collector.js'
import { addClient, addProvider, addRoute, captureLogger, secret, setPolicy } from '../gateway/harness.js'
import { cli, eventually, startTestProxy, tempDataDir, TEST_MASTER_KEY } from '../helpers/proxy.js'

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c'
const CLIENT_SPAN = 'b7ad6b7169203331'

describe('traces (e2e)', () => {
  const data = tempDataDir()
  let collector: OtlpCollector
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let proxy: RunningProxy
  let lines: Array<Record<string, any>>
  const keys: Record<string, string> = {}

  /** The spans of one trace, once the server span and `children` attempt spans have arrived. */
  const treeOf = (traceId: string, children: number) =>
    eventually(
      () => collector.trace(traceId),
      (spans) => spans.some((s) => s.kind === 'server') && spans.filter((s) => s.kind === 'client').length >= children,
    )
  const serverSpan = (spans: CollectedSpan[]) => spans.find((s) => s.kind === 'server')!
  const attemptsOf = (spans: CollectedSpan[]) => spans.filter((s) => s.kind === 'client').sort((a, b) => Number(a.startNs - b.startNs))
  const traceIdOf = async (requestId: string): Promise<string> =>
    (await eventually(() => lines.find((l) => l.msg === 'request' && l.request_id === requestId)?.trace_id as string | undefined, (t) => typeof t === 'string'))!

  beforeAll(async () => {
    collector = await startOtlpCollector()
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, [{ label: 'a1', priority: 0 }, { label: 'a2', priority: 1 }])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await setPolicy(data.dir, 'global', {
      keys: { strategy: 'priority' },
      retry: { max_attempts: 3, backoff_ms: { base: 10, max: 40 } },
      circuit: { consecutive_failures: 100, min_requests: 1000 },
    })
    keys.app = await addClient(data.dir, 'app')
    keys.cap = await addClient(data.dir, 'cap', ['--capture'])
    keys.limited = await addClient(data.dir, 'limited', ['--rpm', '1'])
    const captured = await captureLogger()
    lines = captured.lines
    proxy = await startTestProxy(data.dir, { logger: captured.logger, env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=t0k3n', OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_SERVICE_NAME: 'proxy-under-test' } })
  })
  afterAll(async () => {
    await proxy?.close()
    await alpha.close()
    await beta.close()
    await collector.close()
    data.cleanup()
  })

  it('continues the client trace: a server span, one attempt beneath it, traceparent upstream, trace id in log and audit', async () => {
    const openai = new OpenAI({ apiKey: keys.app, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { data: answer, response } = await openai.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] }, { headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` } })
      .withResponse()
    expect(answer.choices[0]!.message.content).toBe(`served by alpha with ${secret('alpha', 'a1')}`)
    const spans = await treeOf(CLIENT_TRACE, 1)
    const server = serverSpan(spans)
    const [attempt] = attemptsOf(spans)
    expect(spans).toHaveLength(2)
    expect(server.parentSpanId).toBe(CLIENT_SPAN)
    expect(server.name).toBe('chat m')
    expect(server.resource['service.name']).toBe('proxy-under-test')
    expect(server.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'm',
      'gen_ai.response.model': 'up-a',
      'gen_ai.usage.input_tokens': 5,
      'gen_ai.usage.output_tokens': 7,
      'gen_ai.response.finish_reasons': ['stop'],
      'http.response.status_code': 200,
      'proxy.client': 'app',
      'proxy.provider': 'alpha',
      'proxy.key_label': 'a1',
      'proxy.attempts': 1,
      'proxy.request_id': response.headers.get('x-request-id'),
    })
    expect(server.attributes['proxy.request.body']).toBeUndefined()
    expect(server.events.map((e) => e.name)).toContain('proxy.first_byte')
    expect(attempt!.parentSpanId).toBe(server.spanId)
    expect(attempt!.name).toBe('chat up-a')
    expect(attempt!.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'up-a', 'proxy.provider': 'alpha', 'proxy.key_label': 'a1', 'server.address': '127.0.0.1' })
    expect(attempt!.status.code).toBe('unset')
    // the upstream saw the attempt's span as its parent
    expect(alpha.requests.at(-1)!.traceparent).toBe(`00-${CLIENT_TRACE}-${attempt!.spanId}-01`)
    const requestId = response.headers.get('x-request-id')!
    expect(await traceIdOf(requestId)).toBe(CLIENT_TRACE)
    await proxy.audit.flush()
    const row = await proxy.store.db.selectFrom('audit').select(['trace_id']).where('request_id', '=', requestId).executeTakeFirstOrThrow()
    expect(row.trace_id).toBe(CLIENT_TRACE)
    const shown = await cli(data.dir, ['audit', 'show', requestId])
    expect(shown.stdout).toMatch(new RegExp(`^trace\\s+${CLIENT_TRACE}$`, 'm'))
  })

  it('sends the OTEL_EXPORTER_OTLP_HEADERS with every export', () => {
    expect(collector.headers.length).toBeGreaterThan(0)
    for (const h of collector.headers) expect(h['x-collector-token']).toBe('t0k3n')
  })

  it('honours a client that did not sample: nothing is exported, the unsampled context still goes upstream', async () => {
    const unsampled = '4bf92f3577b34da6a3ce929d0e0e4736'
    const openai = new OpenAI({ apiKey: keys.app, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { response } = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'quietly' }] }, { headers: { traceparent: `00-${unsampled}-00f067aa0ba902b7-00` } }).withResponse()
    expect(await traceIdOf(response.headers.get('x-request-id')!)).toBe(unsampled)
    expect(alpha.requests.at(-1)!.traceparent).toMatch(new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`))
    // a later sampled request's spans arrive; by then this one's would have too
    const { response: later } = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'loudly' }] }).withResponse()
    await treeOf(await traceIdOf(later.headers.get('x-request-id')!), 1)
    expect(collector.trace(unsampled)).toEqual([])
  })

  it('starts a new trace when the client sends a malformed traceparent', async () => {
    const openai = new OpenAI({ apiKey: keys.app, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { response } = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, { headers: { traceparent: '00-not-a-trace-01' } }).withResponse()
    expect(response.status).toBe(200)
    const traceId = await traceIdOf(response.headers.get('x-request-id')!)
    expect(traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(serverSpan(await treeOf(traceId, 1)).parentSpanId).toBeNull()
  })

  it('traces a stream: first byte, finish reason and usage on the server span, one attempt', async () => {
    const openai = new OpenAI({ apiKey: keys.app, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { data: stream, response } = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'stream it' }], stream: true }).withResponse()
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
    expect(text).toContain('served by alpha')
    const traceId = await traceIdOf(response.headers.get('x-request-id')!)
    const spans = await treeOf(traceId, 1)
    const server = serverSpan(spans)
    expect(server.parentSpanId).toBeNull()
    expect(attemptsOf(spans)).toHaveLength(1)
    expect(server.attributes).toMatchObject({ 'gen_ai.request.stream': true, 'gen_ai.response.finish_reasons': ['stop'], 'gen_ai.response.model': 'up-a', 'http.response.status_code': 200 })
    expect(server.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0)
    const firstByte = server.events.find((e) => e.name === 'proxy.first_byte')
    expect(firstByte).toBeDefined()
  })

  it('shows retries and the fallback as sibling attempt spans', async () => {
    alpha.fail({ status: 500 })
    try {
      const openai = new OpenAI({ apiKey: keys.app, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
      const { data: answer, response } = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'fall back' }] }).withResponse()
      expect(answer.choices[0]!.message.content).toBe(`served by beta with ${secret('beta', 'b1')}`)
      expect(response.headers.get('x-proxy-fallback')).toBe('provider')
      const traceId = await traceIdOf(response.headers.get('x-request-id')!)
      const spans = await treeOf(traceId, 3)
      const server = serverSpan(spans)
      const attempts = attemptsOf(spans)
      expect(attempts.map((a) => [a.attributes['proxy.provider'], a.attributes['proxy.key_label'], a.status.code])).toEqual([
        ['alpha', 'a1', 'error'],
        ['alpha', 'a2', 'error'],
        ['beta', 'b1', 'unset'],
      ])
      for (const a of attempts) expect(a.parentSpanId).toBe(server.spanId)
      expect(attempts[0]!.attributes).toMatchObject({ 'proxy.error.status': 502, 'proxy.failure_reason': 'server_error' })
      expect(attempts[1]!.attributes['proxy.fallback']).toBe('key')
      expect(attempts[2]!.attributes).toMatchObject({ 'proxy.fallback': 'provider', 'gen_ai.request.model': 'up-b' })
      expect(server.attributes).toMatchObject({ 'proxy.fallback': 'provider', 'proxy.attempts': 3, 'proxy.provider': 'beta', 'gen_ai.response.model': 'up-b' })
      // each attempt carried its own span upstream
      const sent = [...alpha.requests.slice(-2), beta.requests.at(-1)!].map((r) => r.traceparent)
      expect(sent).toEqual(attempts.map((a) => `00-${traceId}-${a.spanId}-01`))
    } finally {
      alpha.heal()
    }
  })

  it('traces refused requests: a 401 and a 429 from the limits, with no attempt spans', async () => {
    const bad = await fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sk-proxy-wrong', 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [] }) })
    expect(bad.status).toBe(401)
    const badSpans = await treeOf(await traceIdOf(bad.headers.get('x-request-id')!), 0)
    expect(badSpans).toHaveLength(1)
    expect(serverSpan(badSpans).attributes).toMatchObject({ 'http.response.status_code': 401, 'error.type': 'invalid_api_key' })

    const openai = new OpenAI({ apiKey: keys.limited, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'one' }] })
    const refused = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'two' }] }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError)
    const requestId = (refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('x-request-id')
    const spans = await treeOf(await traceIdOf(requestId!), 0)
    expect(spans).toHaveLength(1)
    const server = serverSpan(spans)
    expect(server.attributes).toMatchObject({ 'http.response.status_code': 429, 'proxy.client': 'limited', 'proxy.attempts': 0 })
    expect(server.attributes['error.type']).toBeTypeOf('string')
    expect(server.events.map((e) => e.name)).toEqual(['proxy.limits.refused'])
    expect(server.status.code).toBe('unset')
  })

  it('records bodies only for a client with content capture on', async () => {
    const openai = new OpenAI({ apiKey: keys.cap, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { response } = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'capture this prompt' }] }).withResponse()
    const server = serverSpan(await treeOf(await traceIdOf(response.headers.get('x-request-id')!), 1))
    expect(server.attributes['proxy.request.body']).toContain('capture this prompt')
    expect(server.attributes['proxy.response.body']).toContain('served by alpha')
  })

  it('traces /v1/messages from the Anthropic SDK with the GenAI attributes', async () => {
    const anthropic = new Anthropic({ apiKey: keys.app, baseURL: proxy.url, maxRetries: 0 })
    const { data: message, response } = await anthropic.messages.create({ model: 'm', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(message.content[0]).toMatchObject({ type: 'text' })
    const spans = await treeOf(await traceIdOf(response.headers.get('x-request-id')!), 1)
    const server = serverSpan(spans)
    expect(server.name).toBe('chat m')
    expect(server.attributes).toMatchObject({ 'url.path': '/v1/messages', 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['end_turn'], 'proxy.provider': 'alpha' })
  })

  it('names embeddings and Responses API calls by their operation', async () => {
    const openai = new OpenAI({ apiKey: keys.app, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { response: embedded } = await openai.embeddings.create({ model: 'm', input: ['a', 'b'] }).withResponse()
    const embeddings = serverSpan(await treeOf(await traceIdOf(embedded.headers.get('x-request-id')!), 1))
    expect(embeddings.name).toBe('embeddings m')
    expect(embeddings.attributes).toMatchObject({ 'gen_ai.operation.name': 'embeddings', 'gen_ai.response.model': 'up-a', 'url.path': '/v1/embeddings' })
    const { data: answer, response } = await openai.responses.create({ model: 'm', input: 'hi' }).withResponse()
    expect(answer.status).toBe('completed')
    const spans = await treeOf(await traceIdOf(response.headers.get('x-request-id')!), 1)
    expect(serverSpan(spans).attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'url.path': '/v1/responses', 'gen_ai.response.finish_reasons': ['completed'], 'gen_ai.response.id': answer.id })
    expect(attemptsOf(spans)[0]!.name).toBe('chat up-a')
  })

  it('never puts a secret in a span: upstream keys, client keys, the master key', async () => {
    const secrets = [secret('alpha', 'a1'), secret('alpha', 'a2'), secret('beta', 'b1'), keys.app!, keys.cap!, keys.limited!, TEST_MASTER_KEY]
    expect(collector.spans.length).toBeGreaterThan(8)
    const everything = JSON.stringify(collector.spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status, resource: s.resource })))
    for (const s of secrets) expect(everything).not.toContain(s)
    // the collector's own request headers carry nothing of ours either
    expect(JSON.stringify(collector.headers)).not.toContain('sk-')
  })
})

describe('traces with a dead collector (e2e)', () => {
  const data = tempDataDir()
  let upstream: FaultUpstream
  let proxy: RunningProxy

  beforeAll(async () => {
    // a port that was just free: nothing listens there
    const gone = await startOtlpCollector()
    await gone.close()
    upstream = await startFaultUpstream('alpha')
    await addProvider(data.dir, 'alpha', upstream, ['a1'])
    await addRoute(data.dir, 'm', ['alpha/up-a'])
    proxy = await startTestProxy(data.dir, {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: gone.url, OTEL_EXPORTER_OTLP_TIMEOUT: '200', OTEL_BSP_SCHEDULE_DELAY: '10', OTEL_BSP_MAX_QUEUE_SIZE: '8', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4' },
    })
  })
  afterAll(async () => {
    await upstream.close()
    data.cleanup()
  })

  it('serves every request and counts the spans it could not deliver', async () => {
    const key = await addClient(data.dir, 'app')
    await eventually(() => fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status), (s) => s === 200)
    const openai = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const statuses: number[] = []
    for (let round = 0; round < 6; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()))
      for (const a of answers) statuses.push(a.response.status)
    }
    expect(statuses).toEqual(Array(60).fill(200))
    const dropped = async () => {
      const metric = await proxy.metrics.registry.getSingleMetric('proxy_trace_spans_dropped_total')!.get()
      return metric.values.reduce((sum, v) => sum + v.value, 0)
    }
    // 120 spans (a server span and an attempt per request): most never fit the queue of 8, the rest fail to export
    expect(await eventually(dropped, (n) => n >= 100, 5000)).toBeGreaterThanOrEqual(100)
    const started = Date.now()
    await proxy.close()
    // the last export gives up within its timeout: shutdown does not hang on the collector
    expect(Date.now() - started).toBeLessThan(5000)
  })
})
