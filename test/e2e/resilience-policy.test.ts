/**
 * Policies end to end: client > route > global precedence, the global fallback route, what
 * `proxy policy show|schema|set` print, and the transparency headers and log line.
 */
import { readFileSync } from 'node:fs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { policyJsonSchema } from '../../src/core/policy-schema.js'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { addClient, addProvider, addRoute, captureLogger, chat, must, setPolicy } from '../gateway/harness.js'
import { cli, eventually, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('policy layering and fallback routes (e2e)', () => {
  const data = tempDataDir()
  let alpha: FaultUpstream
  let beta: FaultUpstream
  let proxy: RunningProxy
  let plain: string
  let special: string
  let narrow: string
  let log: Awaited<ReturnType<typeof captureLogger>>

  beforeAll(async () => {
    alpha = await startFaultUpstream('alpha')
    beta = await startFaultUpstream('beta')
    await addProvider(data.dir, 'alpha', alpha, ['a1', 'a2', 'a3', 'a4', 'a5'])
    await addProvider(data.dir, 'beta', beta, ['b1'])
    const base = { retry: { backoff_ms: { base: 1, max: 1 } }, circuit: { consecutive_failures: 1000, min_requests: 100000 } }
    await setPolicy(data.dir, 'global', { ...base, retry: { ...base.retry, max_attempts: 1 } })
    await setPolicy(data.dir, 'route-two', { retry: { max_attempts: 2 } })
    await setPolicy(data.dir, 'client-four', { retry: { max_attempts: 4 } })
    await setPolicy(data.dir, 'with-global', { retry: { max_attempts: 6 }, fallback: { global_route: 'fallback' } })
    await addRoute(data.dir, 'plain', ['alpha/up-a'])
    await addRoute(data.dir, 'tuned', ['alpha/up-a'], 'route-two')
    await addRoute(data.dir, 'guarded', ['alpha/up-a'], 'with-global')
    await addRoute(data.dir, 'fallback', ['beta/up-fallback'])
    plain = await addClient(data.dir, 'plain')
    special = await addClient(data.dir, 'special', ['--policy', 'client-four'])
    narrow = await addClient(data.dir, 'narrow', ['--models', 'guarded'])
    log = await captureLogger()
    proxy = await startTestProxy(data.dir, { logger: log.logger })
  })
  afterEach(() => {
    alpha.heal()
    beta.heal()
  })
  afterAll(async () => {
    await proxy.close()
    await alpha.close()
    await beta.close()
    data.cleanup()
  })

  const upstreamCalls = async (key: string, model: string) => {
    const before = alpha.count()
    const r = await chat(proxy.url, key, model)
    expect(r.status).toBe(502)
    return alpha.count() - before
  }

  it('a client policy beats the route policy, which beats the global one', async () => {
    alpha.fail({ status: 500 })
    expect(await upstreamCalls(plain, 'plain')).toBe(1) // global: 1
    expect(await upstreamCalls(plain, 'tuned')).toBe(2) // route: 2
    expect(await upstreamCalls(special, 'tuned')).toBe(4) // client: 4
    expect(await upstreamCalls(special, 'plain')).toBe(4)
  })

  it('layers field by field: a route policy that sets only max_attempts keeps the global backoff', async () => {
    const show = JSON.parse((await must(cli(data.dir, ['policy', 'show', 'tuned']))).stdout)
    expect(show.route).toBe('tuned')
    expect(show.layers).toEqual(['defaults', 'global', "route policy 'route-two'"])
    expect(show.policy.retry).toEqual({ max_attempts: 2, backoff_ms: { base: 1, max: 1 }, retry_after_cap_ms: 30000 })
    expect(show.policy.timeouts_ms.budget).toBe(120000) // a default
    const forClient = JSON.parse((await must(cli(data.dir, ['policy', 'show', 'tuned', '--client', 'special']))).stdout)
    expect(forClient.layers.at(-1)).toBe("client policy 'client-four'")
    expect(forClient.policy.retry.max_attempts).toBe(4)
    const named = JSON.parse((await must(cli(data.dir, ['policy', 'show', 'route-two']))).stdout)
    expect(named).toMatchObject({ name: 'route-two', stored: true, policy: { retry: { max_attempts: 2 } } })
    const missing = await cli(data.dir, ['policy', 'show', 'nothing-here'])
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('neither a stored policy nor a routed model')
  })

  it('tries the global fallback route last, and says so in x-proxy-fallback', async () => {
    alpha.fail({ status: 503 })
    const r = await chat(proxy.url, plain, 'guarded')
    expect(r.status).toBe(200)
    expect(r.content).toBe('served by beta with sk-beta-b1')
    expect(r.headers.get('x-proxy-fallback')).toBe('global')
    expect(r.headers.get('x-proxy-provider')).toBe('beta')
    expect(r.headers.get('x-proxy-model')).toBe('up-fallback')
    expect(r.headers.get('x-proxy-attempts')).toBe('6') // the five alpha keys, then the global route
    // a client limited to the guarded model still gets the operator's fallback
    expect((await chat(proxy.url, narrow, 'guarded')).headers.get('x-proxy-fallback')).toBe('global')
  })

  it('logs every attempt with why it failed, and never a key secret in headers or logs', async () => {
    alpha.fail({ status: 503 })
    const r = await chat(proxy.url, plain, 'guarded')
    for (const [, value] of r.headers) expect(value).not.toContain('sk-')
    const line = (await eventually(
      () => log.lines.find((l) => l.msg === 'request' && l.request_id === r.headers.get('x-request-id')),
      (l) => !!l,
    ))!
    expect(line.failed_attempts).toHaveLength(5)
    expect(line.failed_attempts[0]).toMatchObject({ provider: 'alpha', status: 502, reason: 'server_error', code: 'upstream_unavailable' })
    expect(line.provider).toBe('beta')
    expect(JSON.stringify(log.lines)).not.toMatch(/sk-(alpha|beta)-/)
  })
})

describe('policy commands', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  it('`proxy policy schema` prints the JSON schema generated from the zod schema, as published in docs/policies.md', async () => {
    const r = await must(cli(data.dir, ['policy', 'schema']))
    const schema = JSON.parse(r.stdout)
    expect(schema).toEqual(policyJsonSchema())
    expect(schema).toMatchObject({ type: 'object', additionalProperties: false })
    expect(schema.properties.keys.properties.strategy.enum).toEqual(['round-robin', 'priority', 'least-used', 'weighted'])
    const doc = readFileSync(new URL('../../docs/policies.md', import.meta.url), 'utf8')
    const published = /<!-- policy-schema:start -->\s*```json\n([\s\S]*?)```\s*<!-- policy-schema:end -->/.exec(doc)
    expect(published, 'docs/policies.md has the policy schema between its markers').not.toBeNull()
    expect(JSON.parse(published![1]!), "the policy schema in docs/policies.md is stale: paste the output of 'proxy policy schema' between its markers").toEqual(schema)
  })

  it('`proxy policy set` names the offending field', async () => {
    const tooBig = await cli(data.dir, ['policy', 'set', 'p', '--file', '-'], { stdin: '{"retry":{"max_attempts":0}}' })
    expect(tooBig.code).not.toBe(0)
    expect(tooBig.stderr).toContain('retry.max_attempts')
    const typo = await cli(data.dir, ['policy', 'set', 'p', '--file', '-'], { stdin: '{"circuit":{"open_seconds":3}}' })
    expect(typo.stderr).toMatch(/circuit: .*'open_seconds'/)
    const strategy = await cli(data.dir, ['policy', 'set', 'p', '--file', '-'], { stdin: '{"keys":{"strategy":"random"}}' })
    expect(strategy.stderr).toContain('keys.strategy')
  })

  it('`proxy policy show global` prints the defaults when nothing is stored', async () => {
    const r = JSON.parse((await must(cli(data.dir, ['policy', 'show', 'global']))).stdout)
    expect(r).toMatchObject({ name: 'global', stored: false, layers: ['defaults'] })
    expect(r.policy.keys).toEqual({ strategy: 'round-robin', cooldown_ms: 10000 })
    expect(r.policy.circuit).toMatchObject({ consecutive_failures: 5, half_open_probes: 1 })
  })
})
