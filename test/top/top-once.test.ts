/**
 * `node bin/proxy.js top --once` against a real `node bin/proxy.js serve` child forwarding to the
 * recording fake OpenAI upstream: the printed frame carries the numbers the server's /admin/v1/stats
 * reports. Runs the build in dist/ (`npm run build`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StatsReport } from '../../src/server/admin/stats.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const BIN = path.join(root, 'bin/proxy.js')
const BUILT = path.join(root, 'dist/src/cli/main.js')
const run = promisify(execFile)

const REQUESTS = 9

async function proxyCli(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: root, env: { ...process.env, ...testEnv(dataDir), ...env }, timeout: 20_000 })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }
  }
}

describe('proxy top --once (built binary)', () => {
  const data = tempDataDir()
  let upstream: FakeUpstream
  let child: ChildProcess | null = null
  let url = ''
  let adminKey = ''
  const ids: string[] = []

  beforeAll(async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: this test runs the built binary. Run 'npm run build' first.`)
    upstream = await startFakeOpenAI()
    expect((await cli(data.dir, ['providers', 'add', 'fakeai', '--type', 'openai', '--base-url', upstream.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'fakeai', '--label', 'primary'], { stdin: 'sk-fake-upstream' })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'fakeai/gpt-4o-mini'])).code).toBe(0)
    const userKey = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    adminKey = keyFrom((await cli(data.dir, ['clients', 'add', 'ops', '--role', 'admin'])).stdout)
    child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', 'warn', '--log-format', 'json'], { cwd: root, env: { ...process.env, ...testEnv(data.dir) }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 10 s: ${stderr}`)), 10_000)
      child!.stderr!.on('data', (d) => {
        stderr += d
        const m = /listening on (http:\/\/\S+)/.exec(stderr)
        if (m) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      })
      child!.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)))
    })
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] }),
      })
      expect(res.status).toBe(200)
      await res.text()
      ids.push(res.headers.get('x-request-id')!)
    }
    expect(upstream.requests).toHaveLength(REQUESTS)
  }, 30_000)
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    await upstream?.close()
    data.cleanup()
  })

  const serverStats = async (): Promise<StatsReport> => {
    const token = readFileSync(path.join(data.dir, 'admin.token'), 'utf8').trim()
    return (await (await fetch(`${url}/admin/v1/stats`, { headers: { authorization: `Bearer ${token}` } })).json()) as StatsReport
  }

  it('prints one frame with the figures the server reports, found through server.json and admin.token', async () => {
    const res = await proxyCli(data.dir, ['top', '--once'])
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    const stats = await serverStats()
    expect(stats.totals.requests).toBe(REQUESTS)
    const frame = res.stdout
    expect(frame).toContain(`proxy top  ${url}`)
    // the connections against the cap, in the header line
    expect(stats.connections!.max).toBeGreaterThan(0)
    expect(frame.split('\n')[0]).toMatch(new RegExp(`  conns [1-9]\\d*/${stats.connections!.max.toLocaleString('en-US')}  `))
    expect(frame).toContain(`total ${REQUESTS} req, 0 err`)
    expect(frame).toMatch(new RegExp(`\\nfakeai\\s+openai\\s+${stats.providers[0]!.requests}\\s+0\\s+0%`))
    expect(frame).toMatch(/fakeai\/primary\s+ok\s+closed/)
    for (const id of ids) expect(frame).toContain(id)
    // newest first
    expect(frame.indexOf(ids.at(-1)!)).toBeLessThan(frame.indexOf(ids[0]!))
    expect(frame).not.toContain('q quit')
  })

  it('prints the raw report with --json', async () => {
    const res = await proxyCli(data.dir, ['top', '--once', '--json'])
    expect(res.code).toBe(0)
    const report = JSON.parse(res.stdout) as StatsReport
    expect(report.object).toBe('proxy.stats')
    expect(report.totals.requests).toBe(REQUESTS)
    expect(report.providers.map((p) => p.name)).toEqual(['fakeai'])
    expect(report.recent.map((r) => r.id)).toEqual([...ids].reverse())
  })

  it('reaches a server by --url with an admin key from PROXY_ADMIN_KEY, and refuses without one', async () => {
    const other = tempDataDir()
    try {
      const ok = await proxyCli(other.dir, ['top', '--once', '--url', url], { PROXY_ADMIN_KEY: adminKey })
      expect(ok.code).toBe(0)
      expect(ok.stdout).toContain(`total ${REQUESTS} req`)
      const refused = await proxyCli(other.dir, ['top', '--once', '--url', url])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain('refused the admin credential (401)')
    } finally {
      other.cleanup()
    }
  })

  it('fails clearly when no server runs', async () => {
    const other = tempDataDir()
    try {
      const res = await proxyCli(other.dir, ['top', '--once'])
      expect(res.code).toBe(1)
      expect(res.stderr).toContain('No proxy server found')
      expect(res.stderr).toContain('server.json')
    } finally {
      other.cleanup()
    }
  })
})
