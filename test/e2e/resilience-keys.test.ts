/**
 * Key health and key selection through the real server: a 401 marks a key invalid (shown in
 * `proxy keys ls`, logged) and the next key serves; a 429 cools a key down for its Retry-After;
 * strategies pick keys as the policy says.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { addClient, addProvider, addRoute, captureLogger, chat, must, secret, setPolicy, startAlphaProxy, type AlphaProxy } from '../gateway/harness.js'
import { cli, eventually, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('upstream key health (e2e)', () => {
  let data: ReturnType<typeof tempDataDir>
  let upstream: FaultUpstream
  let proxy: RunningProxy
  let key: string
  let log: Awaited<ReturnType<typeof captureLogger>>

  beforeEach(async () => {
    data = tempDataDir()
    upstream = await startFaultUpstream('alpha')
    await addProvider(data.dir, 'alpha', upstream, [
      { label: 'k1', priority: 0 },
      { label: 'k2', priority: 1 },
      { label: 'k3', priority: 2 },
    ])
    await addRoute(data.dir, 'm', ['alpha/up'])
    await setPolicy(data.dir, 'global', { keys: { strategy: 'priority' }, retry: { backoff_ms: { base: 10, max: 50 } } })
    key = await addClient(data.dir, 'app')
    log = await captureLogger()
    proxy = await startTestProxy(data.dir, { logger: log.logger })
  })
  afterEach(async () => {
    await proxy.close()
    await upstream.close()
    data.cleanup()
  })

  it('a 401 marks the key invalid, the next key serves, and keys ls shows it until the key is re-enabled', async () => {
    upstream.fail({ key: secret('alpha', 'k1'), status: 401 })
    const r = await chat(proxy.url, key, 'm')
    expect(r.status).toBe(200)
    expect(r.content).toBe(`served by alpha with ${secret('alpha', 'k2')}`)
    expect(r.headers.get('x-proxy-attempts')).toBe('2')
    expect(r.headers.get('x-proxy-fallback')).toBe('key')
    expect(r.headers.get('x-proxy-provider')).toBe('alpha')
    expect(r.headers.get('x-proxy-model')).toBe('up')

    // the invalid key is not tried again
    for (let i = 0; i < 3; i++) expect((await chat(proxy.url, key, 'm')).headers.get('x-proxy-attempts')).toBe('1')
    expect(upstream.count(secret('alpha', 'k1'))).toBe(1)

    // logged once, by label, never by secret
    const change = log.lines.find((l) => l.event === 'key_health')
    expect(change).toMatchObject({ provider: 'alpha', key: 'k1', from: 'ok', to: 'invalid' })
    const request = log.lines.find((l) => l.msg === 'request' && l.attempts === 2)
    expect(request?.failed_attempts).toEqual([expect.objectContaining({ provider: 'alpha', key: 'k1', reason: 'key_rejected', code: 'upstream_auth_failed' })])
    expect(JSON.stringify(log.lines)).not.toContain('sk-alpha')

    // written behind (about every half second) into the store
    const listed = await eventually(
      async () => JSON.parse((await cli(data.dir, ['keys', 'ls', '--json'])).stdout) as Array<{ label: string; health: string; healthReason: string | null }>,
      (keys) => keys.find((k) => k.label === 'k1')?.health === 'invalid',
    )
    expect(listed.find((k) => k.label === 'k1')!.healthReason).toContain('401')
    expect((await cli(data.dir, ['keys', 'ls'])).stdout).toMatch(/k1\s+active\s+invalid/)

    // re-enabling clears it; the server uses the key again within about a second
    upstream.heal()
    await must(cli(data.dir, ['keys', 'enable', 'k1']))
    await eventually(() => chat(proxy.url, key, 'm'), (res) => res.content.endsWith(secret('alpha', 'k1')))
    expect(JSON.parse((await cli(data.dir, ['keys', 'ls', '--json'])).stdout)[0]).toMatchObject({ label: 'k1', health: 'ok' })
  })

  it('a rotated key starts healthy', async () => {
    upstream.fail({ key: secret('alpha', 'k1'), status: 403 })
    await chat(proxy.url, key, 'm')
    await must(cli(data.dir, ['keys', 'rotate', 'k1'], { stdin: 'sk-alpha-k1-new' }))
    await eventually(() => chat(proxy.url, key, 'm'), (res) => res.content.endsWith('sk-alpha-k1-new'))
  })

  it('a 429 with Retry-After cools the key down for that long, then it serves again', async () => {
    upstream.fail({ key: secret('alpha', 'k1'), status: 429, retryAfter: '1', times: 1 })
    const first = await chat(proxy.url, key, 'm')
    expect(first.content).toBe(`served by alpha with ${secret('alpha', 'k2')}`)
    const cooling = await chat(proxy.url, key, 'm')
    expect(cooling.content).toBe(`served by alpha with ${secret('alpha', 'k2')}`)
    expect(cooling.headers.get('x-proxy-attempts')).toBe('1') // k1 skipped, not tried
    expect(upstream.count(secret('alpha', 'k1'))).toBe(1)
    const listed = await eventually(
      async () => JSON.parse((await cli(data.dir, ['keys', 'ls', '--json'])).stdout) as Array<{ label: string; health: string; cooldownUntil: string | null }>,
      (keys) => keys[0]!.health === 'cooling',
    )
    expect(Date.parse(listed[0]!.cooldownUntil!) - Date.now()).toBeLessThanOrEqual(1000)
    await new Promise((r) => setTimeout(r, 1100))
    const after = await chat(proxy.url, key, 'm')
    expect(after.content).toBe(`served by alpha with ${secret('alpha', 'k1')}`)
    expect(log.lines.filter((l) => l.event === 'key_health').map((l) => `${l.from}>${l.to}`)).toEqual(['ok>cooling', 'cooling>ok'])
  })

  it('keys disable takes a key out of rotation', async () => {
    await must(cli(data.dir, ['keys', 'disable', 'k1']))
    await eventually(() => chat(proxy.url, key, 'm'), (res) => res.content.endsWith(secret('alpha', 'k2')))
    expect(JSON.parse((await cli(data.dir, ['keys', 'ls', '--json'])).stdout)[0]).toMatchObject({ label: 'k1', state: 'disabled' })
  })
})

describe('key strategies (e2e)', () => {
  let alpha: AlphaProxy

  beforeEach(async () => {
    alpha = await startAlphaProxy([
      { label: 'k1', priority: 2, weight: 1 },
      { label: 'k2', priority: 0, weight: 1 },
      { label: 'k3', priority: 1, weight: 1 },
    ])
  })
  afterEach(() => alpha.close())

  const servedBy = async (n: number) => {
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push((await chat(alpha.proxy.url, alpha.key, 'm')).content.replace('served by alpha with sk-alpha-', ''))
    return out
  }

  it('round-robin (the default) spreads requests over the keys', async () => {
    const seen = await servedBy(6)
    expect(new Set(seen)).toEqual(new Set(['k1', 'k2', 'k3']))
    expect(seen.filter((k) => k === 'k1')).toHaveLength(2)
  })

  it('priority always uses the lowest number while it is available', async () => {
    await setPolicy(alpha.dir, 'global', { keys: { strategy: 'priority' } })
    await eventually(() => alpha.proxy.config.current().globalPolicy.keys.strategy, (s) => s === 'priority')
    expect(await servedBy(4)).toEqual(['k2', 'k2', 'k2', 'k2'])
    alpha.upstream.fail({ key: secret('alpha', 'k2'), status: 429, retryAfter: '30' })
    expect(await servedBy(2)).toEqual(['k3', 'k3'])
  })

  it('least-used sends concurrent requests to the keys with fewest in flight', async () => {
    await setPolicy(alpha.dir, 'global', { keys: { strategy: 'least-used' } })
    await eventually(() => alpha.proxy.config.current().globalPolicy.keys.strategy, (s) => s === 'least-used')
    alpha.upstream.fail({ delayMs: 300 })
    const results = await Promise.all([0, 1, 2].map(() => chat(alpha.proxy.url, alpha.key, 'm')))
    expect(new Set(results.map((r) => r.content.slice(-2)))).toEqual(new Set(['k1', 'k2', 'k3']))
  })
})
