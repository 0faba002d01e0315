import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('the official openai SDK against the proxy (mock provider)', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let sdk: OpenAI
  let limited: OpenAI

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'chunks=5'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'text-embedding-3-small', '--target', 'mock/mock-embed'])).code).toBe(0)
    const app = await cli(data.dir, ['clients', 'add', 'app'])
    const narrow = await cli(data.dir, ['clients', 'add', 'narrow', '--models', 'text-embedding-3-small'])
    proxy = await startTestProxy(data.dir)
    sdk = new OpenAI({ apiKey: keyFrom(app.stdout), baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    limited = new OpenAI({ apiKey: keyFrom(narrow.stdout), baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('answers a chat completion', async () => {
    const res = await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] })
    expect(res.object).toBe('chat.completion')
    expect(res.choices[0]!.message.content).toBe('Mock reply from mock-small: you said "ping".')
    expect(res.choices[0]!.finish_reason).toBe('stop')
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens)
  })

  it('streams a chat completion that rebuilds to the same text', async () => {
    const stream = await sdk.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'stream me' }] })
    let text = ''
    let chunks = 0
    let finish: string | null = null
    for await (const chunk of stream) {
      chunks++
      text += chunk.choices[0]?.delta.content ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(text).toBe('Mock reply from mock-small: you said "stream me".')
    expect(chunks).toBeGreaterThanOrEqual(5)
    expect(finish).toBe('stop')
  })

  it('sends usage in the stream only when the client asks for it', async () => {
    const withUsage = await sdk.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }] })
    const usages = []
    for await (const chunk of withUsage) if (chunk.usage) usages.push(chunk.usage)
    expect(usages).toHaveLength(1)
    expect(usages[0]!.completion_tokens).toBeGreaterThan(0)

    const without = await sdk.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }] })
    for await (const chunk of without) expect(chunk.usage ?? null).toBeNull()
  })

  it('accumulates a stream with the SDK stream helper', async () => {
    const runner = sdk.chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'helper' }] })
    const final = await runner.finalChatCompletion()
    expect(final.choices[0]!.message.content).toBe('Mock reply from mock-small: you said "helper".')
  })

  it('answers a legacy completion, streamed and not', async () => {
    const res = await sdk.completions.create({ model: 'gpt-4o-mini', prompt: 'Say this is a test' })
    expect(res.object).toBe('text_completion')
    expect(res.choices[0]!.text).toContain('Say this is a test')
    const stream = await sdk.completions.create({ model: 'gpt-4o-mini', prompt: 'abc', stream: true })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? ''
    expect(text).toBe('Mock reply from mock-small: you said "abc".')
  })

  it('returns embeddings, as floats and as base64', async () => {
    const res = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] })
    expect(res.data).toHaveLength(2)
    expect(res.data[0]!.embedding).toHaveLength(16)
    expect(res.data[0]!.embedding).not.toEqual(res.data[1]!.embedding)
    // The SDK asks for base64 by default and decodes it; ask explicitly for floats too.
    const floats = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: 'a', encoding_format: 'float', dimensions: 8 })
    expect(floats.data[0]!.embedding).toHaveLength(8)
    expect(Math.hypot(...floats.data[0]!.embedding)).toBeCloseTo(1, 3)
  })

  it('lists and retrieves the models a client may use', async () => {
    const models = []
    for await (const m of sdk.models.list()) models.push(m.id)
    expect(models).toEqual(['gpt-4o-mini', 'text-embedding-3-small'])
    const narrow = []
    for await (const m of limited.models.list()) narrow.push(m.id)
    expect(narrow).toEqual(['text-embedding-3-small'])
    const one = await sdk.models.retrieve('gpt-4o-mini')
    expect(one).toMatchObject({ id: 'gpt-4o-mini', object: 'model', owned_by: 'mock' })
  })

  it('raises the SDK\'s own error classes for proxy errors', async () => {
    const bad = new OpenAI({ apiKey: 'sk-proxy-wrong', baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    await expect(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError)
    const notFound = sdk.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })
    await expect(notFound).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    await expect(notFound).rejects.toMatchObject({ code: 'model_not_found', param: 'model' })
    const badRequest = sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [], temperature: 5 } as never)
    await expect(badRequest).rejects.toBeInstanceOf(OpenAI.BadRequestError)
    await expect(badRequest).rejects.toMatchObject({ param: 'messages' })
    const forbidden = limited.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
    await expect(forbidden).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError)
  })

  it('serves a model to a narrowed client once proxy clients set --models allows it, and narrows it again', async () => {
    const ask = () => limited.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
    const refused = ask()
    await expect(refused).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError)
    await expect(refused).rejects.toThrow(/proxy clients set narrow --models/)
    expect((await cli(data.dir, ['clients', 'set', 'narrow', '--models', 'all'])).stdout).toContain('models all')
    await eventually(() => ask().then(() => true, () => false), (served) => served, 3000)
    await cli(data.dir, ['clients', 'set', 'narrow', '--models', 'text-embedding-3-small'])
    await eventually(() => ask().then(() => true, () => false), (served) => !served, 3000)
    expect((await cli(data.dir, ['clients', 'set', 'narrow', '--models', ' , '])).code).not.toBe(0)
  })
})
