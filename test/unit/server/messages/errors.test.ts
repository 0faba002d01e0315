import {
  APIError,
  AuthenticationError,
  BadRequestError,
  ContentTooLargeError,
  GatewayTimeoutError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  RateLimitError,
} from '@anthropic-ai/sdk'
import { afterEach, describe, expect, it } from 'vitest'
import { bodyTooLarge, internalError, invalidApiKey, invalidRequest, modelNotFound, permissionDenied, ProxyError } from '../../../../src/core/errors.js'
import { upstreamHttpError, upstreamTimeout } from '../../../../src/providers/shared/upstream-error.js'
import { messagesErrorEvent, toMessagesError } from '../../../../src/server/messages/errors.js'
import { toMessageEvents } from '../../../../src/server/messages/stream.js'
import { startSdkHarness, type SdkHarness } from './sdk-server.js'

const noUpstream = new ProxyError({
  status: 503,
  type: 'service_unavailable',
  code: 'upstream_unavailable',
  message: "No usable upstream for model 'claude-x': circuit open.",
  headers: { 'retry-after': '3' },
})
const quota = new ProxyError({ status: 429, type: 'insufficient_quota', code: 'insufficient_quota', message: 'You exceeded your current quota.', headers: { 'retry-after': '3600' } })
const rateLimited = new ProxyError({ status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Too many requests.', headers: { 'retry-after': '7' } })

const CASES: Array<[string, ProxyError, number, string, abstract new (...args: never[]) => APIError]> = [
  ['a bad request', invalidRequest("Invalid value for 'messages'.", 'messages', 'invalid_value'), 400, 'invalid_request_error', BadRequestError],
  ['an unknown client key', invalidApiKey('Invalid API key.'), 401, 'authentication_error', AuthenticationError],
  ['a model the key may not use', permissionDenied('Not allowed.'), 403, 'permission_error', PermissionDeniedError],
  ['an unknown model', modelNotFound('claude-nope'), 404, 'not_found_error', NotFoundError],
  ['a body too large', bodyTooLarge(1024), 413, 'request_too_large', ContentTooLargeError],
  ['a rate limit', rateLimited, 429, 'rate_limit_error', RateLimitError],
  ['an exhausted quota', quota, 429, 'rate_limit_error', RateLimitError],
  ['a proxy failure', internalError('req_1'), 500, 'api_error', InternalServerError],
  ['an upstream 500', upstreamHttpError('openai', 500, { message: 'boom' }), 502, 'api_error', InternalServerError],
  ['an upstream 529', upstreamHttpError('claude', 529, { message: 'Overloaded' }), 529, 'overloaded_error', OverloadedError],
  ['no usable upstream (503)', noUpstream, 529, 'overloaded_error', OverloadedError],
  ['an upstream timeout', upstreamTimeout('openai', 'first_byte'), 504, 'timeout_error', GatewayTimeoutError],
]

describe('ProxyError -> Anthropic error answers, as the official SDK raises them', () => {
  let harness: SdkHarness | null = null
  afterEach(async () => {
    await harness?.close()
    harness = null
  })

  async function raised(err: ProxyError): Promise<APIError> {
    const { status, body, headers } = toMessagesError(err, 'req_abc')
    harness = await startSdkHarness(() => ({ kind: 'json', status, body, headers }))
    const failure: unknown = await harness.client.messages.create({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(failure).toBeInstanceOf(APIError)
    return failure as APIError
  }

  it.each(CASES)('answers %s with %i %s', async (_what, err, status, type, errorClass) => {
    const sdkError = await raised(err)
    expect(sdkError).toBeInstanceOf(errorClass)
    expect(sdkError.status).toBe(status)
    expect(sdkError.type).toBe(type)
    expect(sdkError.apiMessage).toBe(err.message)
    expect(sdkError.errorCode).toBe(err.code)
  })

  it('keeps retry-after, and says not to retry where a retry cannot help', async () => {
    expect((await raised(noUpstream)).headers?.get('retry-after')).toBe('3')
    expect((await raised(rateLimited)).headers?.get('x-should-retry')).toBeNull()
    const exhausted = await raised(quota)
    expect(exhausted.headers?.get('retry-after')).toBe('3600')
    expect(exhausted.headers?.get('x-should-retry')).toBe('false')
    expect(toMessagesError(upstreamHttpError('openai', 401, { message: 'bad key' })).headers).toEqual({ 'x-should-retry': 'false' })
  })

  it('writes the body in Anthropic\'s shape', () => {
    expect(toMessagesError(invalidApiKey('Invalid API key.'), 'req_abc')).toEqual({
      status: 401,
      headers: {},
      body: { type: 'error', error: { type: 'authentication_error', message: 'Invalid API key.', details: { error_code: 'invalid_api_key' } }, request_id: 'req_abc' },
    })
  })

  it('ends a started stream with an error event that the SDK raises', async () => {
    async function* failing() {
      yield { id: 'chatcmpl-1', object: 'chat.completion.chunk' as const, created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }] }
      throw upstreamHttpError('claude', 529, { message: 'Overloaded' })
    }
    async function* served() {
      try {
        yield* toMessageEvents(failing(), { model: 'claude-x' })
      } catch (err) {
        yield messagesErrorEvent(err as ProxyError)
      }
    }
    harness = await startSdkHarness(() => ({ kind: 'events', events: served() }))
    const stream = harness.client.messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] })
    const texts: string[] = []
    stream.on('text', (t) => texts.push(t))
    const failure = await stream.finalMessage().then(() => null, (e: unknown) => e)
    expect(failure).toBeInstanceOf(APIError)
    expect((failure as APIError).type).toBe('overloaded_error')
    expect((failure as APIError).apiMessage).toContain('Overloaded')
    expect(texts).toEqual(['Hel'])
  })
})
