/**
 * The upstream exchange's own timeouts (providers/shared/http.ts): the first-byte timer, which replaced
 * undici's headersTimeout, and the call's signal, which bounds the rest. Real HTTP against the fault upstream.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Agent } from 'undici'
import { callUpstream, fetchJson, type UpstreamCall } from '../../../src/providers/shared/http.js'
import { LightAbort } from '../../../src/core/signal-like.js'
import type { CallContext } from '../../../src/providers/types.js'
import { startFaultUpstream, type FaultUpstream } from '../../fakes/fault-upstream.js'

describe('upstream exchange timeouts', () => {
  let upstream: FaultUpstream
  const dispatcher = new Agent()

  beforeAll(async () => {
    upstream = await startFaultUpstream('slow')
  })
  afterEach(() => upstream.heal())
  afterAll(async () => {
    await dispatcher.close()
    await upstream.close()
  })

  const ctx = (firstByteMs: number, signal = new LightAbort()): CallContext => ({ apiKey: 'k', upstreamModel: 'm', signal, requestId: 'req_t', timeouts: { firstByteMs } })
  const call = (c: CallContext, stream = false): UpstreamCall => ({
    dispatcher,
    provider: 'slow',
    url: `${upstream.url}/v1/chat/completions`,
    headers: { authorization: 'Bearer k' },
    body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...(stream ? { stream: true } : {}) },
    ctx: c,
  })
  const timed = async (p: Promise<unknown>) => {
    const started = performance.now()
    const err = await p.then(
      () => null,
      (e: unknown) => e as { code?: string; message?: string; status?: number },
    )
    return { err, ms: performance.now() - started }
  }

  it('gives up on an upstream that sends no headers after firstByteMs, as a first-byte timeout', async () => {
    upstream.fail({ hang: 'before_headers' })
    for (const p of [() => fetchJson(call(ctx(200))), () => callUpstream(call(ctx(200), true))]) {
      const { err, ms } = await timed(p())
      expect(err).toMatchObject({ status: 504, code: 'upstream_timeout', message: "Provider 'slow' did not start answering in time." })
      expect(ms).toBeGreaterThanOrEqual(190)
      expect(ms).toBeLessThan(1500)
    }
  })

  it('stops the first-byte timer once the headers are in: a slow body is bounded by the signal alone', async () => {
    upstream.fail({ hang: 'after_headers' })
    const signal = new LightAbort()
    const cut = setTimeout(() => signal.abort(new DOMException('The upstream call ran out of time.', 'TimeoutError')), 600)
    const { err, ms } = await timed(fetchJson(call(ctx(150, signal))))
    clearTimeout(cut)
    // not cut at 150 ms (the headers came at once), but when the caller's signal said so
    expect(ms).toBeGreaterThanOrEqual(590)
    expect(err).toMatchObject({ status: 504, code: 'upstream_timeout', message: "Provider 'slow' did not finish answering in time." })
  })

  it('answers normally when the upstream is prompt, JSON and streams alike', async () => {
    const answer = await fetchJson<{ choices: unknown[] }>(call(ctx(100)))
    expect(answer.choices.length).toBeGreaterThan(0)
    // chunks 40 ms apart: the stream outlasts the first-byte time, which stopped at the headers
    upstream.fail({ gapMs: 40 })
    const started = performance.now()
    const res = await callUpstream(call(ctx(100), true))
    const text = await res.body.text()
    expect(performance.now() - started).toBeGreaterThan(150)
    expect(text).toContain('[DONE]')
  })

  it('an abort before the first byte wins over the timer (the client went away)', async () => {
    upstream.fail({ hang: 'before_headers' })
    const signal = new LightAbort()
    setTimeout(() => signal.abort(new DOMException('The client closed the request.', 'AbortError')), 50)
    const { err, ms } = await timed(fetchJson(call(ctx(5000, signal))))
    expect(ms).toBeLessThan(1000)
    expect(err).toMatchObject({ status: 499, code: 'client_closed_request' })
  })
})
