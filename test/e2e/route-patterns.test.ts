import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('model routes that are patterns (dated names sent by agents)', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let sdk: OpenAI
  let narrow: OpenAI

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'reply=ok'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'claude-sonnet-4-5*', '--target', 'mock/sonnet-pattern'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'claude-sonnet-4-5-exact', '--target', 'mock/sonnet-exact'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'claude-*', '--target', 'mock/upstream-*'])).code).toBe(0)
    const app = await cli(data.dir, ['clients', 'add', 'app'])
    const limited = await cli(data.dir, ['clients', 'add', 'limited', '--models', 'claude-sonnet-4-5*'])
    proxy = await startTestProxy(data.dir)
    sdk = new OpenAI({ apiKey: keyFrom(app.stdout), baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    narrow = new OpenAI({ apiKey: keyFrom(limited.stdout), baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  const upstreamOf = async (client: OpenAI, model: string) => {
    const { response } = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    return response.headers.get('x-proxy-model')
  }

  it('routes a dated name through the pattern that catches it', async () => {
    expect(await upstreamOf(sdk, 'claude-sonnet-4-5-20250929')).toBe('sonnet-pattern')
  })

  it('prefers an exact route, then the most specific pattern', async () => {
    expect(await upstreamOf(sdk, 'claude-sonnet-4-5-exact')).toBe('sonnet-exact')
    expect(await upstreamOf(sdk, 'claude-haiku-4-5-20251001')).toBe('upstream-haiku-4-5-20251001')
  })

  it('lets a client allowed a pattern use the names it matches, and no others', async () => {
    expect(await upstreamOf(narrow, 'claude-sonnet-4-5-20250929')).toBe('sonnet-pattern')
    await expect(narrow.chat.completions.create({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 403 })
  })

  it('answers an unmatched name with 404 and lists no pattern as a model', async () => {
    await expect(sdk.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 })
    const ids = (await sdk.models.list()).data.map((m) => m.id)
    expect(ids).toEqual(['claude-sonnet-4-5-exact'])
  })
})
