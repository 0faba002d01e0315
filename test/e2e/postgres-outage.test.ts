/**
 * PostgreSQL unreachable for ten seconds under load (a TCP relay in front of the machine's server is
 * cut, the server itself keeps running): every request is still served, /readyz says the store is down,
 * and once it is back every usage delta is written and every audit row is written or counted dropped.
 * And a server stopped while PostgreSQL is away stops within seconds, instead of waiting for writes
 * that cannot commit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProxy, type RunningProxy } from '../../src/server/start.js'
import { queryUsage } from '../../src/store/repos/usage.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js'
import { cli, eventually, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'

const OUTAGE_MS = 10_000

/**
 * A store in a new database with a mock model and a client `app` with a daily quota (so every request
 * also hands a quota usage write to the store writer), and a server reaching the database through a
 * relay the test can cut.
 */
async function proxyBehindRelay(dataDir: string): Promise<{ database: TestDatabase; relay: TcpRelay; proxy: RunningProxy; key: string }> {
  const database = await createTestDatabase()
  const env = { PROXY_DATABASE_URL: database.url }
  for (const args of [
    ['providers', 'add', 'mock', '--type', 'mock'],
    ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'],
  ]) expect((await cli(dataDir, args, { env })).code).toBe(0)
  const key = keyFrom((await cli(dataDir, ['clients', 'add', 'app', '--daily-tokens', '100M'], { env })).stdout)
  const relay = await startTcpRelay(Number(new URL(database.url).port || 5432))
  const viaRelay = new URL(database.url)
  viaRelay.port = String(relay.port)
  const proxy = await startProxy({ dataDir, databaseUrl: viaRelay.toString(), port: 0, env: testEnv(dataDir), logger: silentLogger(), keychain: null })
  return { database, relay, proxy, key }
}

describe('a PostgreSQL outage under load', () => {
  const data = tempDataDir()
  let database: TestDatabase
  let relay: TcpRelay
  let proxy: RunningProxy
  let key = ''

  beforeAll(async () => {
    ;({ database, relay, proxy, key } = await proxyBehindRelay(data.dir))
  }, 30_000)

  afterAll(async () => {
    await proxy?.close()
    await relay?.close()
    await database?.drop()
    data.cleanup()
  })

  it('serves every request, says so in /readyz, and loses no usage', async () => {
    const statuses = new Map<number, number>()
    let sent = 0
    let stop = false
    const worker = async () => {
      // bounded: stops when told, and never sends more than 50 000; paced, so every phase gets requests
      while (!stop && sent < 50_000) {
        await new Promise((r) => setTimeout(r, 5))
        sent++
        const res = await fetch(`${proxy.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
        }).catch(() => null)
        const status = res?.status ?? 0
        await res?.arrayBuffer()
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
      }
    }
    const readyz = async () => (await fetch(`${proxy.url}/readyz`)).json() as Promise<{ status: string; checks: Record<string, { ok: boolean; detail?: string }> }>
    // Audit rows, usage and key health written under load are no configuration change: no reload.
    const reloads = async () => /proxy_config_reloads_total\{result="ok"\} (\d+)/.exec(await (await fetch(`${proxy.url}/metrics`)).text())?.[1] ?? '0'
    const reloadsBefore = await reloads()
    const load = Promise.all(Array.from({ length: 4 }, worker))

    await new Promise((r) => setTimeout(r, 1500))
    expect((await readyz()).checks.store).toEqual({ ok: true, detail: 'postgres' })
    const beforeCut = sent
    relay.cut()
    await new Promise((r) => setTimeout(r, 2500))
    const during = await readyz()
    await new Promise((r) => setTimeout(r, OUTAGE_MS - 2500))
    const duringCut = sent - beforeCut
    relay.restore()
    await new Promise((r) => setTimeout(r, 1500))
    stop = true
    await load

    console.log(`postgres outage of ${OUTAGE_MS / 1000} s: ${sent} requests (${duringCut} while cut), statuses ${JSON.stringify(Object.fromEntries(statuses))}; /readyz while cut: ${JSON.stringify(during)}`)
    expect(during.status).toBe('degraded')
    expect(during.checks.store).toEqual({ ok: true, detail: 'postgres: down' })
    expect(during.checks.degraded?.detail).toMatch(/store: .*writes buffered/)
    expect(duringCut).toBeGreaterThan(0)
    expect(statuses.get(200)).toBe(sent)

    // once back: the buffered rows and summed usage reach the database
    await proxy.audit.flush()
    const usage = await eventually(
      () => queryUsage(proxy.store.db, { by: 'client' }),
      (lines) => lines[0]?.requests === sent,
      15_000,
    )
    expect(usage[0]).toMatchObject({ key: 'app', requests: sent, errors: 0 })
    const audited = await eventually(
      async () => Number((await proxy.store.db.selectFrom('audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n),
      (n) => n + proxy.audit.dropped === sent,
      15_000,
    )
    console.log(`after the outage: usage ${usage[0]!.requests} requests, audit ${audited} rows written + ${proxy.audit.dropped} counted dropped = ${sent}`)
    expect((await readyz()).status).toBe('ready')
    expect(await reloads()).toBe(reloadsBefore)
  }, 60_000)
})

describe('stopping while PostgreSQL is away', () => {
  const data = tempDataDir()
  let database: TestDatabase
  let relay: TcpRelay

  afterAll(async () => {
    await relay?.close()
    await database?.drop()
    data.cleanup()
  })

  it('stops within seconds, with the writes it could not commit given up', async () => {
    // once in a full CI run this test hit its 60 s timeout with nothing to say where: each step says when it is done
    const t0 = Date.now()
    const step = (what: string) => console.log(`${what} at ${Date.now() - t0} ms`)
    const setup = await proxyBehindRelay(data.dir)
    ;({ database, relay } = setup)
    const { proxy, key } = setup
    step('started behind the relay')
    const chat = async () => {
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
      })
      await res.arrayBuffer()
      return res.status
    }
    for (let i = 0; i < 3; i++) expect(await chat()).toBe(200)
    relay.cut()
    step('served 3, relay cut')
    for (let i = 0; i < 3; i++) expect(await chat()).toBe(200)
    step('served 3 more')
    // the quota usage of these requests is handed over every half second: let it be
    await new Promise((r) => setTimeout(r, 1200))
    const started = Date.now()
    await proxy.close()
    const took = Date.now() - started
    console.log(`stopped in ${took} ms with PostgreSQL away`)
    // the hand-overs are waited for a second each, the writer's close tries for two: well under ten
    expect(took).toBeLessThan(10_000)
  }, 60_000)
})
