/**
 * Circuit breakers through the real server: they open, half-open and close on real traffic; operators
 * force them with `proxy circuit`, which a running server picks up within about a second; and key
 * health and open circuits survive a restart on the same data dir.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { addClient, addProvider, addRoute, captureLogger, chat, must, secret, setPolicy } from '../gateway/harness.js'
import { cli, eventually, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('circuit breakers (e2e)', () => {
  let data: ReturnType<typeof tempDataDir>
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let proxy: RunningProxy
  let key: string
  let log: Awaited<ReturnType<typeof captureLogger>>

  beforeEach(async () => {
    data = tempDataDir()
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, [{ label: 'a1', priority: 0 }, { label: 'a2', priority: 1 }])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    await addRoute(data.dir, 'm', ['alpha/up-a', 'beta/up-b'])
    await setPolicy(data.dir, 'global', {
      keys: { strategy: 'priority' },
      fallback: { other_keys: false },
      retry: { max_attempts: 2, backoff_ms: { base: 5, max: 5 } },
      circuit: { consecutive_failures: 3, open_s: 1, half_open_probes: 1, min_requests: 1000 },
    })
    key = await addClient(data.dir, 'app')
    log = await captureLogger()
    proxy = await startTestProxy(data.dir, { logger: log.logger, reloadPollMs: 250 })
  })
  afterEach(async () => {
    await proxy.close()
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  const providerOf = async () => (await chat(proxy.url, key, 'm')).headers.get('x-proxy-provider')

  it('opens after consecutive failures, skips the provider, half-opens after open_s and closes on a good probe', async () => {
    alpha.fail({ status: 500 })
    for (let i = 0; i < 3; i++) expect(await providerOf()).toBe('beta')
    const tried = alpha.count()
    const skipped = await chat(proxy.url, key, 'm')
    expect(skipped.headers.get('x-proxy-attempts')).toBe('1')
    expect(skipped.headers.get('x-proxy-fallback')).toBe('provider')
    expect(alpha.count()).toBe(tried)

    alpha.heal()
    await sleep(1050)
    expect(await providerOf()).toBe('alpha') // the probe
    expect(await providerOf()).toBe('alpha')
    const transitions = log.lines.filter((l) => l.event === 'circuit' && l.scope === 'provider').map((l) => `${l.provider}:${l.from}>${l.to}`)
    expect(transitions).toEqual(['alpha:closed>open', 'alpha:open>half_open', 'alpha:half_open>closed'])
    // the admin API and metrics read the same state
    expect(proxy.metrics).toBeDefined()
  })

  it('re-opens when the half-open probe fails', async () => {
    alpha.fail({ status: 503 })
    for (let i = 0; i < 3; i++) await providerOf()
    await sleep(1050)
    expect(await providerOf()).toBe('beta') // probe failed, beta served
    expect(alpha.count()).toBe(4)
    expect(await providerOf()).toBe('beta') // open again: alpha not tried
    expect(alpha.count()).toBe(4)
    const transitions = log.lines.filter((l) => l.event === 'circuit' && l.scope === 'provider' && l.provider === 'alpha').map((l) => l.to)
    expect(transitions).toEqual(['open', 'half_open', 'open'])
  })

  it('`proxy circuit open` on a provider makes the server skip it within about a second; reset brings it back', async () => {
    expect(await providerOf()).toBe('alpha')
    const started = Date.now()
    await must(cli(data.dir, ['circuit', 'open', 'alpha']))
    await eventually(providerOf, (p) => p === 'beta', 1500)
    expect(Date.now() - started).toBeLessThan(1500)
    for (let i = 0; i < 3; i++) expect(await providerOf()).toBe('beta')

    const listed = JSON.parse((await cli(data.dir, ['circuit', 'ls', '--json'])).stdout) as Array<{ provider: string; key: string | null; override: string }>
    expect(listed.find((c) => c.provider === 'alpha' && c.key === null)).toMatchObject({ override: 'open' })
    expect((await cli(data.dir, ['circuit', 'ls', 'alpha'])).stdout).toMatch(/^alpha\s+closed\s+open/m)

    await must(cli(data.dir, ['circuit', 'reset', 'alpha']))
    await eventually(providerOf, (p) => p === 'alpha', 1500)
  })

  it('`proxy circuit open provider/key` takes one key out; `circuit close` keeps a provider in use despite failures', async () => {
    await must(cli(data.dir, ['circuit', 'open', 'alpha/a1']))
    await eventually(() => chat(proxy.url, key, 'm'), (r) => r.content.endsWith(secret('alpha', 'a2')), 1500)

    await must(cli(data.dir, ['circuit', 'reset', 'alpha/a1']))
    await must(cli(data.dir, ['circuit', 'close', 'alpha']))
    await eventually(() => chat(proxy.url, key, 'm'), (r) => r.content.endsWith(secret('alpha', 'a1')), 1500)
    alpha.fail({ status: 500 })
    for (let i = 0; i < 5; i++) await providerOf()
    alpha.heal()
    expect(await providerOf()).toBe('alpha') // forced closed: never opened
  })

  it('rejects unknown circuits with a clear message', async () => {
    const r = await cli(data.dir, ['circuit', 'open', 'nope'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain("No provider named 'nope'")
    const k = await cli(data.dir, ['circuit', 'open', 'alpha/zz'])
    expect(k.stderr).toContain("no key labelled 'zz'")
  })
})

describe('health across restarts (e2e)', () => {
  it('keeps an invalid key and an open circuit after the proxy restarts on the same data dir', async () => {
    const data = tempDataDir()
    const alpha = await startFaultUpstream('alpha')
    const beta = await startFaultUpstream('beta')
    try {
      await addProvider(data.dir, 'alpha', alpha, ['a1'])
      await addProvider(data.dir, 'beta', beta, [{ label: 'b1', priority: 0 }, { label: 'b2', priority: 1 }])
      await addRoute(data.dir, 'a-first', ['alpha/up-a', 'beta/up-b'])
      await setPolicy(data.dir, 'global', {
        keys: { strategy: 'priority' },
        retry: { max_attempts: 3, backoff_ms: { base: 5, max: 5 } },
        circuit: { consecutive_failures: 2, open_s: 600, min_requests: 1000 },
      })
      const key = await addClient(data.dir, 'app')
      let proxy = await startTestProxy(data.dir)
      alpha.fail({ status: 500 })
      beta.fail({ key: secret('beta', 'b1'), status: 401 })
      for (let i = 0; i < 2; i++) expect((await chat(proxy.url, key, 'a-first')).content).toBe(`served by beta with ${secret('beta', 'b2')}`)
      await proxy.close() // flushes the write-behind buffer

      const circuits = JSON.parse((await cli(data.dir, ['circuit', 'ls', '--json'])).stdout) as Array<{ provider: string; key: string | null; state: string }>
      expect(circuits.find((c) => c.provider === 'alpha' && c.key === null)?.state).toBe('open')
      const keys = JSON.parse((await cli(data.dir, ['keys', 'ls', '--json'])).stdout) as Array<{ label: string; health: string }>
      expect(keys.find((k) => k.label === 'b1')?.health).toBe('invalid')

      alpha.heal()
      beta.heal()
      const before = { alpha: alpha.count(), b1: beta.count(secret('beta', 'b1')) }
      proxy = await startTestProxy(data.dir)
      try {
        const r = await chat(proxy.url, key, 'a-first')
        expect(r.content).toBe(`served by beta with ${secret('beta', 'b2')}`)
        expect(r.headers.get('x-proxy-attempts')).toBe('1')
        expect(alpha.count()).toBe(before.alpha)
        expect(beta.count(secret('beta', 'b1'))).toBe(before.b1)
      } finally {
        await proxy.close()
      }
    } finally {
      await alpha.close()
      await beta.close()
      data.cleanup()
    }
  })
})
