/**
 * OpenAI-compatible servers that answer `stream: true` with plain JSON: the client still gets a
 * well-formed stream holding the whole answer (read here by the openai SDK's streaming), and an answer
 * that is neither an event stream nor a completion fails with an upstream error before the first byte.
 */
import OpenAI from 'openai'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { chatCompletion, startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, cliOk, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const USAGE = { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 }

describe('a stream request answered with JSON', () => {
  const data = tempDataDir()
  let fake: FakeUpstream
  let proxy: RunningProxy
  let sdk: OpenAI

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    const ok = (args: string[], stdin?: string) => cliOk(data.dir, args, stdin)
    await ok(['providers', 'add', 'compat', '--type', 'openai-compatible', '--base-url', fake.url])
    await ok(['keys', 'add', 'compat', '--label', 'k1'], 'sk-upstream-2222\n')
    await ok(['models', 'add', 'm', '--target', 'compat/served-model'])
    const key = keyFrom((await ok(['clients', 'add', 'app', '--daily-tokens', '1M'])).stdout)
    proxy = await startTestProxy(data.dir)
    sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterEach(() => fake.respond(() => undefined))
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  it('streams a chat answer sent as JSON: its text, finish reason and usage', async () => {
    fake.respond(() => ({ kind: 'json', body: chatCompletion('served-model', 'Hello from a JSON answer', USAGE) }))
    const { data: stream, response } = await sdk.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const chunks: OpenAI.ChatCompletionChunk[] = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello from a JSON answer')
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant')
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop')
    expect(chunks.at(-1)).toMatchObject({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', model: 'served-model', choices: [], usage: USAGE })
    expect(fake.requests.at(-1)!.body.stream).toBe(true)
    // accounted with the answer's own usage
    const audited = await eventually(() => cli(data.dir, ['audit', 'show', response.headers.get('x-request-id')!, '--json']), (r) => r.code === 0)
    expect(JSON.parse(audited.stdout)).toMatchObject({ status: 200, total_tokens: 13 })
  })

  it('streams tool calls sent as JSON, which the SDK assembles into the final message', async () => {
    const answer: { choices: Array<{ message: unknown; finish_reason: string }> } = chatCompletion('served-model', '', USAGE)
    answer.choices[0]!.message = {
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{"tz":"CET"}' } },
      ],
    }
    answer.choices[0]!.finish_reason = 'tool_calls'
    fake.respond(() => ({ kind: 'json', body: answer }))
    const runner = sdk.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'weather and time?' }] })
    const final = await runner.finalChatCompletion()
    expect(final.choices[0]!.finish_reason).toBe('tool_calls')
    expect(final.choices[0]!.message.tool_calls).toEqual([
      { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{"tz":"CET"}' } },
    ])
    // the client did not ask for usage: the usage chunk is not shown
    expect(final.usage).toBeUndefined()
  })

  it('streams a legacy completion sent as JSON', async () => {
    const body = { id: 'cmpl-fake', object: 'text_completion', created: 1_700_000_000, model: 'served-model', choices: [{ index: 0, text: ' there once was a proxy', finish_reason: 'length', logprobs: null }], usage: USAGE }
    fake.respond(() => ({ kind: 'json', body }))
    const stream = await sdk.completions.create({ model: 'm', prompt: 'Once upon a time', stream: true })
    let text = ''
    let finish: string | null = null
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(text).toBe(' there once was a proxy')
    expect(finish).toBe('length')
  })

  it('fails with an upstream error before the first byte when the answer is neither a stream nor a completion', async () => {
    for (const [answer, expected] of [
      [{ kind: 'raw', text: '<html><body>Welcome to nginx!</body></html>', contentType: 'text/html' }, /answered a stream request with text\/html, neither an event stream nor a JSON answer/],
      [{ kind: 'json', body: { object: 'list', data: [] } }, /answered a stream request with JSON that is not a completion/],
      [{ kind: 'raw', text: '' }, /answered a stream request with an empty body/],
      [{ kind: 'json', body: { error: { message: 'model is loading', type: 'server_error' } } }, /answered the stream request with an error: model is loading/],
    ] as const) {
      fake.respond(() => answer)
      const failed = await sdk.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
      expect(failed).toBeInstanceOf(OpenAI.APIError)
      expect((failed as InstanceType<typeof OpenAI.APIError>).status).toBe(502)
      expect((failed as InstanceType<typeof OpenAI.APIError>).message).toMatch(expected)
    }
  })

  it('still reads an event stream sent without its content type', async () => {
    const event = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'served-model', choices: [{ index: 0, delta: { role: 'assistant', content: 'mislabeled' }, finish_reason: 'stop' }] }
    fake.respond(() => ({ kind: 'raw', text: `\ndata: ${JSON.stringify(event)}\n\ndata: [DONE]\n\n`, contentType: 'text/plain' }))
    const stream = await sdk.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe('mislabeled')
  })
})
