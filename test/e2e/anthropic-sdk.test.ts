import Anthropic from '@anthropic-ai/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('the official Anthropic SDK against the proxy', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'claude-sonnet-4-5', '--target', 'mock/mock-sonnet'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'claude-haiku-4-5', '--target', 'mock/mock-haiku'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'agent'])).stdout)
    proxy = await startTestProxy(data.dir)
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('lists models in the Anthropic shape, with the key as x-api-key or as a bearer token', async () => {
    for (const client of [new Anthropic({ apiKey: key, baseURL: proxy.url, maxRetries: 0 }), new Anthropic({ authToken: key, apiKey: null, baseURL: proxy.url, maxRetries: 0 })]) {
      const page = await client.models.list()
      expect(page.data.map((m) => [m.type, m.id])).toEqual([
        ['model', 'claude-haiku-4-5'],
        ['model', 'claude-sonnet-4-5'],
      ])
      expect(Date.parse(page.data[0]!.created_at)).toBeGreaterThan(0)
      expect((await client.models.retrieve('claude-sonnet-4-5')).display_name).toBe('claude-sonnet-4-5')
    }
  })

  it('raises AuthenticationError for a wrong key', async () => {
    const client = new Anthropic({ apiKey: 'sk-proxy-wrong', baseURL: proxy.url, maxRetries: 0 })
    await expect(client.models.list()).rejects.toBeInstanceOf(Anthropic.AuthenticationError)
  })
})
