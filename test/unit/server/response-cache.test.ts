/** The cache's pure parts: the key, what may be cached, and the memory store's bound and expiry. */
import { describe, expect, it } from 'vitest'
import type { RouteConfig } from '../../../src/core/config.js'
import { parsePolicy, withPolicyDefaults } from '../../../src/core/policy-schema.js'
import { requestBypass, StreamVerdict, wholeAnswer } from '../../../src/server/cache/answers.js'
import { cacheKey, canonicalJson } from '../../../src/server/cache/key.js'
import { MemoryCacheStore } from '../../../src/server/cache/memory-store.js'
import type { CachedAnswer } from '../../../src/server/cache/store.js'

const provider = (name: string) => ({ id: 1, name, type: 'openai' as const, baseUrl: null, settings: {}, enabled: true, keys: [] })
const route = (upstream: string): RouteConfig => ({ model: 'gpt', policy: null, createdAt: 0, targets: [{ provider: provider('oai'), upstreamModel: upstream, weight: 1 }] })
const policy = withPolicyDefaults({ cache: {} }).cache!

describe('the cache key', () => {
  const base = { api: '/v1/chat/completions', stream: false, route: route('gpt-4o') }
  const body = { model: 'gpt', messages: [{ role: 'user', content: 'hi' }], temperature: 0 }

  it('is canonical: key order does not matter, nested ones included', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}')
    const reordered = { temperature: 0, messages: [{ content: 'hi', role: 'user' }], model: 'gpt' }
    expect(cacheKey({ ...base, body: reordered })).toBe(cacheKey({ ...base, body }))
  })

  it('leaves out what labels a request, and keeps everything that may change the answer', () => {
    const key = cacheKey({ ...base, body })
    expect(cacheKey({ ...base, body: { ...body, user: 'u', metadata: { a: '1' }, store: true, stream: false } })).toBe(key)
    // Codex CLI's labels: its thread and turn ids change with every request
    expect(cacheKey({ ...base, body: { ...body, prompt_cache_key: 'thread-1', client_metadata: { thread_id: 'thread-1', turn_id: 'turn-2' } } })).toBe(key)
    for (const change of [{ temperature: 1 }, { tools: [] }, { response_format: { type: 'json_object' } }, { some_new_param: 1 }, { stream_options: { include_usage: true } }]) {
      expect(cacheKey({ ...base, body: { ...body, ...change } })).not.toBe(key)
    }
    expect(cacheKey({ ...base, stream: true, body })).not.toBe(key)
    expect(cacheKey({ ...base, api: '/v1/responses', body })).not.toBe(key)
    expect(cacheKey({ ...base, route: route('gpt-4o-mini'), body })).not.toBe(key)
    expect(cacheKey({ ...base, body, headers: { 'anthropic-version': '2023-06-01' } })).not.toBe(key)
    expect(cacheKey({ ...base, body, clientId: 7 })).not.toBe(key)
    expect(key).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe('what may be cached', () => {
  it('bypasses several choices unless allowed, and continuations unless per client', () => {
    expect(requestBypass('chat', { n: 2 }, policy)).toBe('n')
    expect(requestBypass('chat', { n: 2 }, { ...policy, allow_multiple_choices: true })).toBeNull()
    expect(requestBypass('completions', { best_of: 3 }, policy)).toBe('n')
    expect(requestBypass('responses', { previous_response_id: 'resp_1' }, policy)).toBe('stored_state')
    expect(requestBypass('responses', { input: [{ type: 'item_reference', id: 'msg_1' }] }, policy)).toBe('stored_state')
    expect(requestBypass('responses', { previous_response_id: 'resp_1' }, { ...policy, per_client: true })).toBeNull()
    expect(requestBypass('responses', { background: true }, { ...policy, per_client: true })).toBe('background')
    expect(requestBypass('messages', { max_tokens: 10 }, policy)).toBeNull()
  })

  it('keeps whole answers only', () => {
    expect(wholeAnswer('chat', { choices: [{ finish_reason: 'stop' }] })).toBe(true)
    expect(wholeAnswer('chat', { choices: [{ finish_reason: 'stop' }, { finish_reason: 'length' }] })).toBe(false)
    expect(wholeAnswer('responses', { status: 'completed' })).toBe(true)
    expect(wholeAnswer('responses', { status: 'incomplete' })).toBe(false)
    expect(wholeAnswer('messages', { stop_reason: 'end_turn' })).toBe(true)
    expect(wholeAnswer('messages', { stop_reason: 'max_tokens' })).toBe(false)
    expect(wholeAnswer('embeddings', { data: [] })).toBe(true)
  })

  it('judges a stream by its events: a proper end, nothing truncated', () => {
    const verdict = (api: 'chat' | 'responses' | 'messages', events: object[]) => {
      const v = new StreamVerdict(api)
      for (const e of events) v.see(e as Record<string, unknown>)
      return v.whole
    }
    expect(verdict('chat', [{ choices: [{ finish_reason: 'stop' }] }])).toBe(true)
    expect(verdict('chat', [{ choices: [{ finish_reason: 'length' }] }])).toBe(false)
    expect(verdict('responses', [{ type: 'response.created' }, { type: 'response.completed' }])).toBe(true)
    expect(verdict('responses', [{ type: 'response.created' }, { type: 'response.incomplete' }])).toBe(false)
    expect(verdict('responses', [{ type: 'response.created' }])).toBe(false)
    expect(verdict('messages', [{ type: 'message_start' }, { type: 'message_delta', delta: { stop_reason: 'end_turn' } }, { type: 'message_stop' }])).toBe(true)
    expect(verdict('messages', [{ type: 'message_start' }, { type: 'message_delta', delta: { stop_reason: 'max_tokens' } }, { type: 'message_stop' }])).toBe(false)
  })
})

describe('the policy field', () => {
  it('validates cache settings and fills the defaults', () => {
    expect(withPolicyDefaults({}).cache).toBeNull()
    expect(withPolicyDefaults(parsePolicy({ cache: { ttl: '90s', per_client: true } })).cache).toEqual({ ttl_ms: 90_000, max_bytes: 64 * 1024 * 1024, per_client: true, allow_multiple_choices: false })
    expect(() => parsePolicy({ cache: { ttl: 'soon' } })).toThrow(/cache\.ttl/)
    expect(() => parsePolicy({ cache: { max_bytes: 10 } })).toThrow(/cache\.max_bytes/)
    expect(() => parsePolicy({ cache: { ttl: '1m', perClient: true } })).toThrow(/perClient/)
  })
})

describe('the memory store', () => {
  const answer = (model: string, body: string): CachedAnswer => ({ kind: 'json', body, provider: 'p', upstreamModel: 'u', usage: null, model, storedAt: 0 })

  it('evicts the least recently used past max_bytes, expires with the clock, clears by model tag', async () => {
    let now = 1000
    const store = new MemoryCacheStore({ now: () => now, sleep: () => Promise.resolve() })
    const max = 1024
    store.set('a:1', answer('a', 'x'.repeat(300)), 60_000, max)
    store.set('a:2', answer('a', 'x'.repeat(300)), 60_000, max)
    expect(await store.get('a:1', max)).not.toBeNull()
    store.set('b:3', answer('b', 'x'.repeat(300)), 60_000, max)
    expect(await store.get('a:2', max)).toBeNull()
    expect(await store.get('a:1', max)).not.toBeNull()
    expect(store.bytes()).toBeLessThanOrEqual(max)
    store.set('b:big', answer('b', 'x'.repeat(2000)), 60_000, max)
    expect(await store.get('b:big', max)).toBeNull()
    expect(await store.clear('a')).toBe(1)
    expect(await store.get('b:3', max)).not.toBeNull()
    now += 60_001
    expect(await store.get('b:3', max)).toBeNull()
  })
})
