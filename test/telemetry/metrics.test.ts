import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { cli, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'
import { scrape } from './scrape.js'

const json = (key: string, body: unknown) => ({
  method: 'POST',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

/** Reads a whole SSE answer and returns the usage chunk, when there was one. */
async function readStream(res: Response): Promise<{ prompt_tokens: number; completion_tokens: number } | null> {
  expect(res.status).toBe(200)
  const text = await res.text()
  let usage = null
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue
    const chunk = JSON.parse(line.slice(6)) as { usage?: { prompt_tokens: number; completion_tokens: number } }
    if (chunk.usage) usage = chunk.usage
  }
  return usage
}

describe('GET /metrics', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string
  let adminKey: string

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'chunks=4', '--setting', 'chunk_gap_ms=5'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'text-embedding-3-small', '--target', 'mock/mock-embed'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    adminKey = keyFrom((await cli(data.dir, ['clients', 'add', 'ops', '--role', 'admin'])).stdout)
    proxy = await startProxy({ dataDir: data.dir, port: 0, env: testEnv(data.dir), logger: silentLogger(), keychain: null, reloadPollMs: 50 })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('counts exactly the requests sent: streamed and not, errors included', async () => {
    const base = `${proxy.url}/v1`
    let promptTokens = 0
    let completionTokens = 0
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/chat/completions`, json(key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] }))
      expect(res.status).toBe(200)
      const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }
      promptTokens += body.usage.prompt_tokens
      completionTokens += body.usage.completion_tokens
    }
    for (let i = 0; i < 2; i++) {
      const usage = await readStream(
        await fetch(`${base}/chat/completions`, json(key, { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `stream ${i}` }] })),
      )
      promptTokens += usage!.prompt_tokens
      completionTokens += usage!.completion_tokens
    }
    const legacy = await readStream(await fetch(`${base}/completions`, json(key, { model: 'gpt-4o-mini', prompt: 'legacy', stream: true, stream_options: { include_usage: true } })))
    promptTokens += legacy!.prompt_tokens
    completionTokens += legacy!.completion_tokens
    const emb = await fetch(`${base}/embeddings`, json(key, { model: 'text-embedding-3-small', input: 'vector me' }))
    expect(emb.status).toBe(200)
    const embTokens = ((await emb.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens

    expect((await fetch(`${base}/chat/completions`, json('sk-proxy-not-a-real-key', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }))).status).toBe(401)
    expect((await fetch(`${base}/chat/completions`, json(key, { model: 'my-secret-typo-model', messages: [{ role: 'user', content: 'x' }] }))).status).toBe(404)
    expect((await fetch(`${base}/chat/completions`, json(key, { model: 'gpt-4o-mini', messages: [], temperature: 5 }))).status).toBe(400)
    expect((await fetch(`${proxy.url}/v1/nowhere/${'x'.repeat(20)}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404)

    const m = await scrape(proxy.url)
    const chat = '/v1/chat/completions'
    expect(m.value('proxy_requests_total', { route: chat, model: 'gpt-4o-mini', provider: 'mock', status: '200' })).toBe(5)
    expect(m.value('proxy_requests_total', { route: '/v1/completions', model: 'gpt-4o-mini', provider: 'mock', status: '200' })).toBe(1)
    expect(m.value('proxy_requests_total', { route: '/v1/embeddings', model: 'text-embedding-3-small', provider: 'mock', status: '200' })).toBe(1)
    expect(m.value('proxy_requests_total', { route: chat, model: 'none', provider: 'none', status: '401' })).toBe(1)
    expect(m.value('proxy_requests_total', { route: chat, model: 'unknown', provider: 'none', status: '404' })).toBe(1)
    expect(m.value('proxy_requests_total', { route: chat, model: 'none', provider: 'none', status: '400' })).toBe(1)
    expect(m.value('proxy_requests_total', { route: 'other', model: 'none', provider: 'none', status: '404' })).toBe(1)
    expect(m.sum('proxy_requests_total')).toBe(11)

    // Every request has a latency; only the three streams have a time to first token.
    expect(m.count('proxy_request_duration_seconds')).toBe(11)
    expect(m.count('proxy_request_duration_seconds', { stream: 'true' })).toBe(3)
    expect(m.count('proxy_time_to_first_token_seconds')).toBe(3)
    expect(m.count('proxy_time_to_first_token_seconds', { model: 'gpt-4o-mini', provider: 'mock' })).toBe(3)
    // Upstream time and overhead exist for the seven requests that reached an upstream.
    expect(m.count('proxy_upstream_duration_seconds')).toBe(7)
    expect(m.count('proxy_overhead_seconds')).toBe(7)
    expect(m.value('proxy_upstream_attempts_total', { provider: 'mock', outcome: 'ok' })).toBe(7)
    expect(m.sum('proxy_retries_total')).toBe(0)

    expect(m.value('proxy_tokens_total', { direction: 'in', model: 'gpt-4o-mini', provider: 'mock', client: 'app' })).toBe(promptTokens)
    expect(m.value('proxy_tokens_total', { direction: 'out', model: 'gpt-4o-mini', provider: 'mock', client: 'app' })).toBe(completionTokens)
    expect(m.value('proxy_tokens_total', { direction: 'in', model: 'text-embedding-3-small', provider: 'mock', client: 'app' })).toBe(embTokens)
    expect(m.value('proxy_active_streams')).toBe(0)

    // Bounded labels: no raw model name, path or key reaches the exposition.
    expect(m.text).not.toContain('my-secret-typo-model')
    expect(m.text).not.toContain('nowhere')
    expect(m.text).not.toContain(key)
    expect(m.text).not.toContain('sk-proxy-not-a-real-key')
    // Process metrics live on the same (non-global) registry.
    expect(m.families.has('process_cpu_user_seconds_total')).toBe(true)
    expect(m.families.has('nodejs_eventloop_lag_seconds')).toBe(true)
  })

  it('shows a stream as active while it is open', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, json(key, { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a long one' }] }))
    const reader = res.body!.getReader()
    await reader.read()
    expect((await scrape(proxy.url)).value('proxy_active_streams')).toBe(1)
    while (!(await reader.read()).done);
    expect((await scrape(proxy.url)).value('proxy_active_streams')).toBe(0)
  })

  it('exposes the rate-limit counter and the audit writer for other parts to use', async () => {
    proxy.metrics.rateLimited('client')
    proxy.metrics.rateLimited('client')
    proxy.metrics.rateLimited('Not A Scope!')
    const m = await scrape(proxy.url)
    expect(m.value('proxy_rate_limited_total', { scope: 'client' })).toBe(2)
    expect(m.value('proxy_rate_limited_total', { scope: 'other' })).toBe(1)
    expect(m.families.get('proxy_audit_buffered')?.type).toBe('GAUGE')
    expect(m.value('proxy_audit_dropped_total')).toBe(0)
  })

  it('reports each server into its own registry', async () => {
    const other = await startProxy({ dataDir: data.dir, port: 0, env: testEnv(data.dir), logger: silentLogger(), keychain: null })
    try {
      expect((await scrape(other.url)).sum('proxy_requests_total')).toBe(0)
    } finally {
      await other.close()
    }
  })

  it('takes an admin key when PROXY_METRICS_AUTH=admin', async () => {
    const locked = await startProxy({ dataDir: data.dir, port: 0, env: testEnv(data.dir, { PROXY_METRICS_AUTH: 'admin' }), logger: silentLogger(), keychain: null })
    try {
      expect((await fetch(`${locked.url}/metrics`)).status).toBe(401)
      const forbidden = await fetch(`${locked.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })
      expect(forbidden.status).toBe(403)
      expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('admin_required')
      const ok = await fetch(`${locked.url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })
      expect(ok.status).toBe(200)
      expect(ok.headers.get('content-type')).toContain('text/plain')
      expect(await ok.text()).toContain('proxy_requests_total')
      expect((await fetch(`${locked.url}/metrics`, { method: 'POST' })).status).toBe(405)
    } finally {
      await locked.close()
    }
  })
})
