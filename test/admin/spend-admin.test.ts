/**
 * Spend control through the admin API: teams, prices, budgets and a client's team and budgets, applied at
 * once (the next proxied request sees them), with the same checks as the CLI.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('admin API: teams, prices, budgets', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let token = ''
  let appKey = ''

  const call = async (method: string, route: string, body?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${proxy.url}/admin/v1${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await res.text()
    return { status: res.status, json: (text ? JSON.parse(text) : null) as any }
  }
  const chat = (max_tokens: number) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${appKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens, messages: [{ role: 'user', content: 'hi' }] }),
    })

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'm', '--target', 'mock/mock-small'])).code).toBe(0)
    appKey = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    proxy = await startTestProxy(data.dir, { reloadPollMs: 60_000 })
    token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
  })
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('refuses a budget over an unpriced model, then takes it once the model has a price', async () => {
    const refused = await call('PUT', '/budgets', { level: 'client', name: 'app', dailyUsd: 1 })
    expect(refused.status).toBe(400)
    expect(refused.json.error.code).toBe('price_unknown')
    expect(refused.json.error.message).toContain('mock/mock-small')
    expect((await call('PUT', '/prices', { model: 'mock-small', input: 1, output: 1 })).status).toBe(200)
    expect((await call('GET', '/prices')).json.data).toEqual([expect.objectContaining({ model: 'mock-small', provider: null, input: 1, output: 1 })])
  })

  it("narrows a client's models and allows all again", async () => {
    const narrowed = await call('PATCH', '/clients/app', { models: ['gpt-4o-mini'] })
    expect(narrowed.status).toBe(200)
    expect(narrowed.json.models).toEqual(['gpt-4o-mini'])
    const all = await call('PATCH', '/clients/app', { models: null })
    expect(all.json.models).toBeNull()
    expect((await call('PATCH', '/clients/app', { models: [''] })).status).toBe(400)
  })

  it('puts a client in a team with a budget, and the next request is held to it', async () => {
    const team = await call('POST', '/teams', { name: 'search', rpm: 100, dailyBudgetUsd: 0.0001 })
    expect(team.status).toBe(201)
    const set = await call('PATCH', '/clients/app', { team: 'search' })
    expect(set.status).toBe(200)
    expect(set.json.teamId).toBe(team.json.id)
    expect((await call('GET', '/teams')).json.data[0]).toMatchObject({ name: 'search', rpm: 100, clients: ['app'] })
    // about 10 prompt tokens + 200 output > $0.0001 at $1 per 1M
    const res = await chat(200)
    expect(res.status).toBe(429)
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("the daily budget of team 'search'")
    expect((await chat(50)).status).toBe(200)
    expect((await call('GET', '/budgets')).json.data).toEqual([expect.objectContaining({ level: 'team', name: 'search', period: 'day', limitMicros: 100 })])
    expect((await call('PATCH', '/teams/search', { dailyBudgetUsd: null })).status).toBe(200)
    expect((await chat(200)).status).toBe(200)
  })

  it('removes a team and a price', async () => {
    expect((await call('DELETE', '/teams/search')).json).toMatchObject({ deleted: true })
    expect((await call('GET', '/teams')).json.data).toEqual([])
    expect((await call('DELETE', '/prices/mock-small')).json).toMatchObject({ deleted: true })
    expect((await call('DELETE', '/prices/mock-small')).status).toBe(400)
  })
})
