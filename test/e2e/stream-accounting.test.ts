/**
 * Streams that end without a usage chunk (the upstream reports none, or the client leaves before the end)
 * are charged what was streamed: the prompt estimate plus the tokens written to the client, at least the
 * pre-call estimate. Real server, the openai SDK and raw fetch as clients, a fake OpenAI-compatible upstream.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { estimateChatPromptTokens, Tokenizer } from '../../src/limits/estimate.js'
import { estimateMessagesTokens } from '../../src/server/messages/count-tokens.js'
import { estimateResponsesTokens } from '../../src/server/responses/endpoints.js'
import type { RunningProxy } from '../../src/server/start.js'
import { chatChunks, startFakeOpenAI, type FakeUpstream, type RecordedRequest, type Scripted } from '../fakes/openai-upstream.js'
import { cli, cliOk, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const tokenizer = new Tokenizer()
const count = (text: string) => tokenizer.counter(1e9)(text)

/** A long answer: 300 pieces, about 900 tokens. */
const PIECES = Array.from({ length: 300 }, (_, i) => ` word${i} and`)
const FULL = PIECES.join('')
/** An upstream that ignores stream_options: its streams end without a usage chunk. */
const withoutUsage = (r: RecordedRequest): Scripted | undefined => (r.body?.stream ? { kind: 'sse', events: chatChunks(r.body.model, PIECES).slice(0, -1), gapMs: 5 } : undefined)

describe('streams without a usage chunk are charged what they streamed', () => {
  const data = tempDataDir()
  let fake: FakeUpstream
  let proxy: RunningProxy
  const keys: Record<string, string> = {}
  const req = { model: 'long', messages: [{ role: 'user' as const, content: 'Tell me a long story, please.' }] }
  let prompt = 0

  /** Tokens charged today to a client, as `proxy clients ls` reports them (the quota book's store). */
  const chargedToday = async (name: string): Promise<number> => {
    const r = await cli(data.dir, ['clients', 'ls', '--json'])
    expect(r.code, r.stderr).toBe(0)
    return (JSON.parse(r.stdout) as Array<{ name: string; usage: { today: number } }>).find((c) => c.name === name)!.usage.today
  }

  beforeAll(async () => {
    await tokenizer.load()
    prompt = estimateChatPromptTokens(req, count)
    fake = await startFakeOpenAI()
    fake.respond(withoutUsage)
    const ok = (args: string[], stdin?: string) => cliOk(data.dir, args, stdin)
    await ok(['providers', 'add', 'up', '--type', 'openai-compatible', '--base-url', fake.url])
    await ok(['keys', 'add', 'up', '--label', 'k1'], 'sk-upstream-1111\n')
    await ok(['models', 'add', 'long', '--target', 'up/long-model'])
    keys.whole = keyFrom((await ok(['clients', 'add', 'whole', '--daily-tokens', '100k'])).stdout)
    keys.cut = keyFrom((await ok(['clients', 'add', 'cut', '--daily-tokens', '100k'])).stdout)
    keys.small = keyFrom((await ok(['clients', 'add', 'small', '--daily-tokens', '100'])).stdout)
    keys.messages = keyFrom((await ok(['clients', 'add', 'messages', '--daily-tokens', '100k'])).stdout)
    keys.responses = keyFrom((await ok(['clients', 'add', 'responses', '--daily-tokens', '100k'])).stdout)
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  it('charges a stream read whole the prompt plus every token it received, and records them in the audit row', async () => {
    const sdk = new OpenAI({ apiKey: keys.whole, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const { data: stream, response } = await sdk.chat.completions.create({ ...req, stream: true }).withResponse()
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe(FULL)
    const received = count(text)
    expect(received).toBeGreaterThan(800)
    const charged = await eventually(() => chargedToday('whole'), (n) => n > 0)
    expect(charged).toBe(prompt + received)

    const shown = await eventually(
      () => cli(data.dir, ['audit', 'show', response.headers.get('x-request-id')!, '--json']),
      (r) => r.code === 0,
    )
    expect(JSON.parse(shown.stdout)).toMatchObject({ prompt_tokens: prompt, completion_tokens: received, total_tokens: prompt + received })
  })

  it('charges a client that disconnects mid-stream for what it received, not the whole answer', async () => {
    const text = await readThenLeave(`${proxy.url}/v1/chat/completions`, keys.cut!, { ...req, stream: true }, (e) => e.choices?.[0]?.delta?.content ?? '')
    const received = count(text)
    expect(received).toBeGreaterThan(100)
    const charged = await eventually(() => chargedToday('cut'), (n) => n > 0)
    // at least what reached the client; chunks in flight when it left may add a little
    expect(charged).toBeGreaterThanOrEqual(prompt + received)
    expect(charged).toBeLessThan(prompt + received + 60)
    expect(charged).toBeLessThan(count(FULL) / 2)
  })

  it('charges a client that leaves a Messages or Responses stream for what it received', async () => {
    const apis = [
      { client: 'messages', path: '/v1/messages', body: { model: 'long', max_tokens: 50, stream: true, messages: req.messages }, text: (e: any) => (e.type === 'content_block_delta' ? (e.delta?.text ?? '') : '') },
      { client: 'responses', path: '/v1/responses', body: { model: 'long', input: req.messages[0]!.content, stream: true }, text: (e: any) => (e.type === 'response.output_text.delta' ? e.delta : '') },
    ]
    for (const api of apis) {
      const text = await readThenLeave(`${proxy.url}${api.path}`, keys[api.client]!, api.body, api.text)
      const received = count(text)
      expect(received, api.path).toBeGreaterThan(100)
      const charged = await eventually(() => chargedToday(api.client), (n) => n > 0)
      expect(charged, api.path).toBeGreaterThanOrEqual(received)
      expect(charged, api.path).toBeLessThan(count(FULL) / 2)
    }
  })

  it('charges Messages and Responses streams translated from an upstream without usage what they streamed', async () => {
    const audited = async (id: string | null) => JSON.parse((await eventually(() => cli(data.dir, ['audit', 'show', id!, '--json']), (r) => r.code === 0)).stdout)
    const anthropic = new Anthropic({ apiKey: keys.whole, baseURL: proxy.url, maxRetries: 0 })
    const messagesReq = { model: 'long', max_tokens: 2000, messages: [{ role: 'user' as const, content: 'Tell me a long story, please.' }] }
    const messages = await anthropic.messages.create({ ...messagesReq, stream: true }).withResponse()
    let text = ''
    for await (const event of messages.data) if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
    expect(text).toBe(FULL)
    expect(await audited(messages.response.headers.get('x-request-id'))).toMatchObject({ prompt_tokens: estimateMessagesTokens(messagesReq, count), completion_tokens: count(FULL) })

    const openai = new OpenAI({ apiKey: keys.whole, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const responsesReq = { model: 'long', input: 'Tell me a long story, please.' }
    const responses = await openai.responses.create({ ...responsesReq, stream: true }).withResponse()
    for await (const _ of responses.data) void _
    expect(await audited(responses.response.headers.get('x-request-id'))).toMatchObject({ prompt_tokens: estimateResponsesTokens(responsesReq, count, false), completion_tokens: count(FULL) })
  })

  it('counts reasoning text and tool-call arguments of chat streams, and the text of legacy completion streams', async () => {
    const base = { id: 'chatcmpl-tools', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'long-model' }
    const delta = (d: object, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta: d, finish_reason: finish }] })
    const reasoning = 'The user wants the weather in two cities, so I will call the tool twice.'
    const args = ['{"city":', '"Paris, France"}', '{"city":"Lyon"}']
    const toolStream = [
      delta({ role: 'assistant', content: '' }),
      delta({ reasoning }),
      delta({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: args[0] } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: args[1] } }] }),
      delta({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: args[2] } }] }),
      delta({}, 'tool_calls'),
    ]
    const textBase = { id: 'cmpl-long', object: 'text_completion', created: 1_700_000_000, model: 'long-model' }
    const textStream = PIECES.slice(0, 50).map((text) => ({ ...textBase, choices: [{ index: 0, text, finish_reason: null, logprobs: null }] }))
    fake.respond((r) => (r.path.endsWith('/chat/completions') ? { kind: 'sse', events: toolStream } : { kind: 'sse', events: textStream }))
    try {
      const sdk = new OpenAI({ apiKey: keys.whole, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
      const chat = await sdk.chat.completions.create({ ...req, stream: true }).withResponse()
      for await (const _ of chat.data) void _
      const completion = await sdk.completions.create({ model: 'long', prompt: 'Once upon a time', max_tokens: 5, stream: true }).withResponse()
      let text = ''
      for await (const c of completion.data) text += c.choices[0]?.text ?? ''
      expect(text).toBe(PIECES.slice(0, 50).join(''))

      const audited = async (res: Response) => JSON.parse((await eventually(() => cli(data.dir, ['audit', 'show', res.headers.get('x-request-id')!, '--json']), (r) => r.code === 0)).stdout)
      expect(await audited(chat.response)).toMatchObject({ prompt_tokens: prompt, completion_tokens: count(reasoning + 'get_weather' + args.join('') + 'get_weather') })
      expect(await audited(completion.response)).toMatchObject({ prompt_tokens: count('Once upon a time'), completion_tokens: count(text) })
    } finally {
      fake.respond(withoutUsage)
    }
  })

  it('refuses the next request once a stream pushed a small quota past its limit', async () => {
    const sdk = new OpenAI({ apiKey: keys.small, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    const stream = await sdk.chat.completions.create({ ...req, stream: true })
    for await (const _ of stream) void _
    await eventually(() => chargedToday('small'), (n) => n > 100)
    const refused = await sdk.chat.completions.create({ ...req, stream: true }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError)
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota')
  })
})

/** Reads a stream's events until 60 of them carried text, then leaves (aborts); returns the text received. */
async function readThenLeave(url: string, key: string, body: object, textOf: (event: any) => string): Promise<string> {
  const controller = new AbortController()
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal })
  expect(res.status).toBe(200)
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  let text = ''
  let pieces = 0
  while (pieces < 60) {
    const { value, done } = await reader.read()
    if (done) break
    buffered += decoder.decode(value, { stream: true })
    let end: number
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end)
      buffered = buffered.slice(end + 2)
      const data = event.split('\n').find((line) => line.startsWith('data: {'))
      if (!data) continue
      const piece = textOf(JSON.parse(data.slice(6)))
      if (piece) {
        text += piece
        pieces++
      }
    }
  }
  controller.abort()
  return text
}
