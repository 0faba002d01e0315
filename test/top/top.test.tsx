/**
 * `proxy top` drawn by ink-testing-library against a real running server (traffic forwarded to the
 * recording fake OpenAI upstream): the frame shows what /admin/v1/stats reports, the keys work, and an
 * unreachable server is reported and retried until it comes up.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { renderToString } from 'ink'
import { render } from 'ink-testing-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminTarget, createAdminClient } from '../../src/cli/admin-client.js'
import { TopApp } from '../../src/cli/top/app.js'
import { Dashboard } from '../../src/cli/top/components/Dashboard.js'
import { DEFAULT_SORTS } from '../../src/cli/top/view-model.js'
import type { StatsReport } from '../../src/server/admin/stats.js'
import type { RunningProxy } from '../../src/server/start.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const REQUESTS = 7

describe('proxy top against a running server', () => {
  const data = tempDataDir()
  let upstream: FakeUpstream
  let proxy: RunningProxy
  let userKey: string
  let lastId = ''

  const serverStats = async (): Promise<StatsReport> => {
    const token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
    const res = await fetch(`${proxy.url}/admin/v1/stats`, { headers: { authorization: `Bearer ${token}` } })
    return (await res.json()) as StatsReport
  }

  beforeAll(async () => {
    upstream = await startFakeOpenAI()
    expect((await cli(data.dir, ['providers', 'add', 'fakeai', '--type', 'openai', '--base-url', upstream.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'fakeai', '--label', 'primary'], { stdin: 'sk-fake-upstream' })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'fakeai/gpt-4o-mini'])).code).toBe(0)
    expect((await cli(data.dir, ['teams', 'add', 'web'])).code).toBe(0)
    userKey = keyFrom((await cli(data.dir, ['clients', 'add', 'app', '--team', 'web'])).stdout)
    proxy = await startTestProxy(data.dir)
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', stream: i === 0, messages: [{ role: 'user', content: `hello ${i}` }] }),
      })
      await res.text()
      expect(res.status).toBe(200)
      lastId = res.headers.get('x-request-id')!
    }
    expect(upstream.requests).toHaveLength(REQUESTS)
  })
  afterAll(async () => {
    await proxy?.close()
    await upstream?.close()
    data.cleanup()
  })

  it('shows the figures the server reports: requests, the provider, a recent request id', async () => {
    const client = createAdminClient(adminTarget({ dataDir: data.dir }, {}))
    let polls = 0
    const source = () => {
      polls++
      return client.stats()
    }
    const app = render(<TopApp source={source} target={() => client.target().describe} intervalMs={150} />)
    try {
      // The frame and a later stats call can straddle a second boundary of the live windows: wait for a
      // frame drawn from figures equal to the server's own, rather than comparing two moments.
      const stats = await serverStats()
      const frame = await eventually(
        () => app.lastFrame() ?? '',
        (f) => f.includes(`total ${REQUESTS} req`) && new RegExp(`^fakeai\\s+openai\\s+${stats.providers[0]!.requests}\\s`, 'm').test(f),
        8000,
      )
      expect(stats.totals.requests).toBe(REQUESTS)
      expect(frame).toContain(proxy.url)
      expect(frame).toContain(`total ${REQUESTS} req`)
      expect(frame).toContain('● live')
      // the provider row: name, type, attempts over the last minute, closed circuit
      const row = frame.split('\n').find((l) => l.startsWith('fakeai'))!
      expect(row).toMatch(new RegExp(`^fakeai\\s+openai\\s+${stats.providers[0]!.requests}\\s+0\\s+0%`))
      expect(row).toContain('closed')
      expect(stats.recent[0]!.id).toBe(lastId)

      // tab twice: the recent requests, newest first
      app.stdin.write('\t')
      await eventually(() => app.lastFrame() ?? '', (f) => f.includes('KEY ') && f.includes('primary'))
      expect(app.lastFrame()).toMatch(/fakeai\/primary\s+ok\s+closed\s+7/)
      app.stdin.write('\t')
      const requests = await eventually(() => app.lastFrame() ?? '', (f) => f.includes('REQUEST ID'))
      const lines = requests.split('\n')
      const first = lines.findIndex((l) => l.includes('REQUEST ID')) + 1
      expect(lines[first]).toContain(lastId)
      expect(lines[first]).toMatch(/gpt-4o-mini\s+fakeai\s+200/)
      for (const r of stats.recent) expect(requests).toContain(r.id)
      // the client's team, from the server's report
      expect(stats.recent[0]!.team).toBe('web')
      expect(requests).toMatch(/TEAM/)
      expect(lines[first]).toMatch(/app\s+web/)

      // s sorts the focused panel; p pauses polling; q quits
      app.stdin.write('s')
      await eventually(() => app.lastFrame() ?? '', (f) => f.includes('sorted by ms'))
      app.stdin.write('p')
      await eventually(() => app.lastFrame() ?? '', (f) => f.includes('‖ paused') && f.includes('p resume'))
      const pausedAt = polls
      await new Promise((r) => setTimeout(r, 450))
      expect(polls).toBe(pausedAt)
      app.stdin.write('p')
      await eventually(() => polls, (n) => n > pausedAt)
      app.stdin.write('q')
      await new Promise((r) => setTimeout(r, 50))
      const quitAt = polls
      await new Promise((r) => setTimeout(r, 450))
      expect(polls).toBe(quitAt)
    } finally {
      app.unmount()
    }
  })

  it('shows the open connections against the cap, and those refused, in the header', async () => {
    const stats = await serverStats()
    expect(stats.connections).toEqual({ open: expect.any(Number), max: expect.any(Number), refused: 0 })
    const header = (connections: StatsReport['connections']) =>
      renderToString(<Dashboard stats={{ ...stats, connections }} problem={null} target={proxy.url} columns={120} rows={40} focused="providers" sorts={DEFAULT_SORTS} paused={false} interactive now={stats.at} />, { columns: 120 }).split('\n')[0]!
    expect(header({ open: 12, max: 4000, refused: 0 })).toMatch(/ {2}conns 12\/4,000 {2}/)
    expect(header({ open: 4000, max: 4000, refused: 1234 })).toContain('conns 4,000/4,000 (1,234 refused)')
    // an older server reports none: nothing is shown
    expect(header(undefined)).not.toContain('conns')
  })

  it('names the instance it watches, and says when that instance cannot reach its store', async () => {
    const stats = await serverStats()
    const port = new URL(proxy.url).port
    expect(stats.instance).toMatchObject({ id: expect.stringMatching(new RegExp(`:${port}$`)), pid: expect.any(Number), store: { kind: 'sqlite', ok: true, detail: null } })
    const header = (instance: StatsReport['instance']) =>
      renderToString(<Dashboard stats={{ ...stats, instance }} problem={null} target={proxy.url} columns={140} rows={40} focused="providers" sorts={DEFAULT_SORTS} paused={false} interactive now={stats.at} />, { columns: 140 }).split('\n')[0]!
    expect(header(stats.instance)).toContain(`${proxy.url} (${stats.instance!.id})`)
    expect(header(stats.instance)).not.toContain('store down')
    expect(header({ ...stats.instance!, store: { kind: 'postgres', ok: false, detail: 'writer: Cannot reach PostgreSQL' } })).toContain('store down')
  })

  it('fits 80x24 and uses a larger terminal for every panel at once', async () => {
    const stats = await serverStats()
    const frame = (columns: number, rows: number) =>
      renderToString(<Dashboard stats={stats} problem={null} target={proxy.url} columns={columns} rows={rows} focused="providers" sorts={DEFAULT_SORTS} paused={false} interactive now={stats.at} />, { columns })
    const small = frame(80, 24).split('\n')
    expect(small.length).toBeLessThanOrEqual(23)
    expect(Math.max(...small.map((l) => l.length))).toBeLessThanOrEqual(80)
    expect(small.join('\n')).toContain('Providers')
    expect(small.join('\n')).not.toContain('REQUEST ID')
    const large = frame(120, 40).split('\n')
    expect(large.length).toBeLessThanOrEqual(39)
    expect(Math.max(...large.map((l) => l.length))).toBeLessThanOrEqual(120)
    const text = large.join('\n')
    for (const part of ['PROVIDER', 'KEY ', 'REQUEST ID', 'fakeai/primary', stats.recent[0]!.id]) expect(text).toContain(part)
  })
})

describe('proxy top when the server is unreachable', () => {
  it('says so, keeps retrying, and shows the server once it is up', async () => {
    const data = tempDataDir()
    const client = createAdminClient(adminTarget({ dataDir: data.dir }, {}))
    const app = render(<TopApp source={client.stats} target={() => client.target().describe} intervalMs={100} />)
    let proxy: RunningProxy | null = null
    try {
      const down = await eventually(() => app.lastFrame() ?? '', (f) => f.includes('attempts so far'))
      expect(down).toContain('No proxy server found')
      expect(down).toContain('○ unreachable')
      proxy = await startTestProxy(data.dir)
      const up = await eventually(() => app.lastFrame() ?? '', (f) => f.includes('● live'), 5000)
      expect(up).toContain(proxy.url)
      expect(up).not.toContain('No proxy server found')
    } finally {
      app.unmount()
      await proxy?.close()
      data.cleanup()
    }
  })

  it('reports a refused connection with the URL it tried', async () => {
    // a port nothing listens on: take a free one and let it go
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((r) => probe.close(() => r()))
    const client = createAdminClient(adminTarget({ url: `http://127.0.0.1:${port}` }, {}))
    const app = render(<TopApp source={client.stats} target={() => client.target().describe} intervalMs={100} />)
    try {
      const frame = await eventually(() => app.lastFrame() ?? '', (f) => f.includes('Cannot reach'))
      expect(frame).toContain(`Cannot reach the proxy at http://127.0.0.1:${port}: connection refused`)
      expect(frame).toContain('Retrying every second')
    } finally {
      app.unmount()
    }
  })
})
