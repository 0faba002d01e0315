/**
 * Streams: retries and fallbacks happen only before the first byte reaches the client; after it, an
 * upstream failure ends the stream with an error event (verified with a mid-stream disconnect).
 */
import OpenAI from 'openai'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { addClient, addProvider, addRoute, chat, secret, setPolicy } from '../gateway/harness.js'
import { startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('stream fallback and mid-stream failures (e2e)', () => {
  const data = tempDataDir()
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let proxy: RunningProxy
  let key: string

  beforeAll(async () => {
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, [{ label: 'a1', priority: 0 }, { label: 'a2', priority: 1 }])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await setPolicy(data.dir, 'global', {
      keys: { strategy: 'priority' },
      retry: { max_attempts: 4, backoff_ms: { base: 10, max: 50 } },
      timeouts_ms: { first_byte: 400, budget: 3000 },
      circuit: { consecutive_failures: 100, min_requests: 1000 },
    })
    key = await addClient(data.dir, 'app')
    proxy = await startTestProxy(data.dir)
  })
  afterEach(() => {
    alpha.heal()
    beta.heal()
  })
  afterAll(async () => {
    await proxy.close()
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  it('falls back before the first byte when the upstream fails with a status', async () => {
    alpha.fail({ status: 502 })
    const r = await chat(proxy.url, key, 'm', { stream: true })
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by beta with ${secret('beta', 'b1')}`)
    expect(r.streamError).toBeNull()
    expect(r.text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    expect(r.headers.get('x-proxy-fallback')).toBe('provider')
    expect(r.headers.get('x-proxy-attempts')).toBe('3')
  })

  it('falls back when the upstream sends headers and then no first chunk (first_byte covers the first chunk)', async () => {
    alpha.fail({ key: secret('alpha', 'a1'), hang: 'after_headers' })
    const r = await chat(proxy.url, key, 'm', { stream: true })
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by alpha with ${secret('alpha', 'a2')}`)
    expect(r.headers.get('x-proxy-fallback')).toBe('key')
    expect(r.ms).toBeGreaterThanOrEqual(390)
  })

  it('falls back when the connection dies before the first chunk', async () => {
    alpha.fail({ key: secret('alpha', 'a1'), disconnectAfter: 0 })
    const r = await chat(proxy.url, key, 'm', { stream: true })
    expect(r.content).toBe(`served by alpha with ${secret('alpha', 'a2')}`)
  })

  it('ends the stream with an error event when the upstream disconnects after the first byte, without falling back', async () => {
    const before = alpha.count() + beta.count()
    alpha.fail({ key: secret('alpha', 'a1'), disconnectAfter: 3, gapMs: 20 })
    const r = await chat(proxy.url, key, 'm', { stream: true })
    expect(r.status).toBe(200)
    expect(r.content).toBe('served by') // the role chunk and two pieces got through
    expect(r.streamError).toMatchObject({ code: expect.stringMatching(/^upstream_/) })
    expect(r.text).not.toContain('[DONE]')
    expect(alpha.count() + beta.count() - before).toBe(1)
    expect(r.headers.get('x-proxy-attempts')).toBe('1')
  })

  it('raises the mid-stream error in the OpenAI SDK', async () => {
    alpha.fail({ key: secret('alpha', 'a1'), disconnectAfter: 2, gapMs: 20 })
    const sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const stream = await sdk.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] })
    let text = ''
    await expect(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
      })(),
    ).rejects.toThrow()
    expect(text).toBe('served')
  })
})
