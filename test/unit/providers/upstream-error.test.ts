import { describe, expect, it } from 'vitest'
import type { ProxyError } from '../../../src/core/errors.js'
import { asProxyError, classifyFailure } from '../../../src/gateway/outcome.js'
import { toChatCompletion } from '../../../src/providers/anthropic/response.js'
import { toChatChunks as toAnthropicChunks } from '../../../src/providers/anthropic/stream.js'
import { normalizeAzureStream } from '../../../src/providers/azure.js'
import { toChatChunks as toOllamaChunks } from '../../../src/providers/ollama/response.js'
import { readAnswer, withoutKey } from '../../../src/providers/shared/upstream-error.js'

describe('withoutKey', () => {
  const key = 'AbCdEfGh12345678XyZ'
  it('removes a key echoed whole, masked, or as a fragment, and keeps the rest of the message', () => {
    expect(withoutKey(`Incorrect API key provided: ${key}. Find yours at x.`, key)).toBe('Incorrect API key provided: [redacted] Find yours at x.')
    expect(withoutKey('bad key AbCd****5678XyZ here', key)).toBe('bad key [redacted] here')
    expect(withoutKey('key ends 345678XyZ', key)).toBe('key ends [redacted]')
    expect(withoutKey('nothing to see', key)).toBe('nothing to see')
  })
  it('leaves text alone when there is no key', () => {
    expect(withoutKey('text', null)).toBe('text')
  })
})

describe('what an attempt threw: the upstream failed, or the proxy did', () => {
  async function failureOf(stream: AsyncIterable<unknown>): Promise<unknown> {
    try {
      for await (const _ of stream);
    } catch (err) {
      return err
    }
    throw new Error('the stream ended without an error')
  }
  async function* events(...items: unknown[]) {
    yield* items
  }
  const counted = { fault: 'server', code: 'upstream_bad_response', status: 502, retryable: true }

  it('an answer the adapters cannot read is the upstream fault: it counts against the provider and may fall back', async () => {
    const anthropic = await failureOf(toAnthropicChunks(events({ type: 'message_start' }) as AsyncIterable<never>, 'claude', 'm'))
    expect(anthropic).toMatchObject(counted)
    expect((anthropic as Error).message).toContain("Provider 'claude'")
    expect(await failureOf(toOllamaChunks(events({ message: { content: 'x', tool_calls: [{}] } }), 'ol', 'm'))).toMatchObject(counted)
    expect(await failureOf(normalizeAzureStream(events({ id: 'x' }) as AsyncIterable<never>, 'chat', 'az'))).toMatchObject(counted)
    expect(() => readAnswer('claude', () => toChatCompletion(null as never, 'm'))).toThrow(expect.objectContaining(counted))
    const outcome = classifyFailure(anthropic as ProxyError, false, Date.now())
    expect(outcome).toMatchObject({ availability: true, fallback: true })
  })

  it('anything else thrown is the proxy\'s own failure: a 500 that neither counts nor falls back', () => {
    const error = asProxyError(new RangeError('Maximum call stack size exceeded'), 'req_1')
    expect(error).toMatchObject({ status: 500, type: 'server_error', code: 'internal_error', retryable: false })
    expect(error.message).toContain('req_1')
    expect(error.message).not.toContain('stack')
    expect((error.cause as Error).message).toBe('Maximum call stack size exceeded')
    expect(classifyFailure(error, false, Date.now())).toMatchObject({ availability: false, fallback: false })
  })
})
