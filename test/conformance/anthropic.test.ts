import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatCompletion } from '../../src/core/openai-schema.js'
import type { RunningProxy } from '../../src/server/start.js'
import { startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'
import { describeProvider } from './provider-suite.js'

describeProvider({ type: 'anthropic', start: startFakeAnthropic, supports: { embeddings: false } })

/** What only an Anthropic route does: fixed headers, dropped and refused parameters, legacy completions. */
describe('anthropic through the proxy', () => {
  const data = tempDataDir()
  let fake: FakeAnthropic
  let proxy: RunningProxy
  let sdk: OpenAI
  let key: string

  beforeAll(async () => {
    fake = await startFakeAnthropic()
    const added = await cli(data.dir, ['providers', 'add', 'claude', '--type', 'anthropic', '--base-url', fake.url, '--setting', 'anthropic_version=2024-01-01', '--setting', 'headers.anthropic-beta=test-beta', '--setting', 'default_max_tokens=777'])
    expect(added.stderr).toBe('')
    expect((await cli(data.dir, ['keys', 'add', 'claude'], { stdin: fake.apiKey! })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'sonnet', '--target', 'claude/claude-sonnet-4-5'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    proxy = await startTestProxy(data.dir)
    sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  const post = (path: string, body: unknown) =>
    fetch(`${proxy.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })

  it('sends the key as x-api-key with the configured version, extra headers and default max_tokens', async () => {
    fake.play({ kind: 'text', text: 'Hi.', usage: { prompt: 3, completion: 1 } })
    await sdk.chat.completions.create({ model: 'sonnet', messages: [{ role: 'user', content: 'Hi' }] })
    const seen = fake.requests.at(-1)!
    expect(seen.path).toBe('/v1/messages')
    expect(seen.headers['x-api-key']).toBe(fake.apiKey)
    expect(seen.headers.authorization).toBeUndefined()
    expect(seen.headers['anthropic-version']).toBe('2024-01-01')
    expect(seen.headers['anthropic-beta']).toBe('test-beta')
    expect(seen.body).toMatchObject({ model: 'claude-sonnet-4-5', max_tokens: 777 })
  })

  it('lists dropped sampling parameters in x-proxy-dropped-params and answers anyway', async () => {
    fake.play({ kind: 'text', text: 'Fine.', usage: { prompt: 3, completion: 1 } })
    const res = await post('/v1/chat/completions', { model: 'sonnet', seed: 7, presence_penalty: 0.5, frequency_penalty: 0, logit_bias: { '50256': -100 }, temperature: 1.7, messages: [{ role: 'user', content: 'Hi' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-proxy-dropped-params')).toBe('presence_penalty,seed,logit_bias')
    expect(((await res.json()) as ChatCompletion).choices[0]!.message.content).toBe('Fine.')
    expect(fake.requests.at(-1)!.body.temperature).toBe(1)
  })

  it('sets x-proxy-dropped-params on streams too, and leaves it off when nothing was dropped', async () => {
    fake.play({ kind: 'text', text: 'Streamed.', usage: { prompt: 3, completion: 2 } })
    const streamed = await post('/v1/chat/completions', { model: 'sonnet', stream: true, seed: 1, messages: [{ role: 'user', content: 'Hi' }] })
    expect(streamed.headers.get('x-proxy-dropped-params')).toBe('seed')
    expect(await streamed.text()).toContain('data: [DONE]')
    const plain = await post('/v1/chat/completions', { model: 'sonnet', messages: [{ role: 'user', content: 'Hi' }] })
    expect(plain.headers.get('x-proxy-dropped-params')).toBeNull()
  })

  it('refuses n > 1 and logprobs with a 400 naming the parameter, without calling the upstream', async () => {
    const before = fake.requests.length
    await expect(sdk.chat.completions.create({ model: 'sonnet', n: 2, messages: [{ role: 'user', content: 'Hi' }] })).rejects.toMatchObject({ status: 400, param: 'n' })
    await expect(sdk.chat.completions.create({ model: 'sonnet', logprobs: true, messages: [{ role: 'user', content: 'Hi' }] })).rejects.toMatchObject({ status: 400, param: 'logprobs' })
    expect(fake.requests.length).toBe(before)
  })

  it('refuses tool call arguments that are not JSON with a 400 naming the field', async () => {
    const call = sdk.chat.completions.create({
      model: 'sonnet',
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{location: Paris' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
    })
    await expect(call).rejects.toMatchObject({ status: 400, param: 'messages[1].tool_calls[0].function.arguments' })
  })

  it('answers legacy completions, streamed and not', async () => {
    fake.play({ kind: 'text', text: 'once upon a time', usage: { prompt: 4, completion: 4 } })
    const res = await sdk.completions.create({ model: 'sonnet', prompt: 'Tell me a story', max_tokens: 20 })
    expect(res.object).toBe('text_completion')
    expect(res.choices[0]).toMatchObject({ text: 'once upon a time', finish_reason: 'stop' })
    expect(res.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 })
    expect(fake.requests.at(-1)!.body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Tell me a story' }] }])

    const stream = await sdk.completions.create({ model: 'sonnet', prompt: 'Tell me a story', stream: true, stream_options: { include_usage: true } })
    let text = ''
    let finish: string | null = null
    let usage: unknown = null
    for await (const chunk of stream) {
      expect(chunk.object).toBe('text_completion')
      text += chunk.choices[0]?.text ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
      usage = chunk.usage ?? usage
    }
    expect(text).toBe('once upon a time')
    expect(finish).toBe('stop')
    expect(usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 4 })
  })

  it('maps a 529 overloaded answer to a 502 upstream_overloaded', async () => {
    fake.play({ kind: 'error', status: 529, message: 'Overloaded' })
    const call = sdk.chat.completions.create({ model: 'sonnet', messages: [{ role: 'user', content: 'x' }] })
    await expect(call).rejects.toMatchObject({ status: 502, code: 'upstream_overloaded', message: expect.stringContaining('Overloaded') })
  })
})
