/**
 * The real binary: `node bin/proxy.js serve` gets SIGTERM while requests are in flight (slow streams,
 * slow answers). It must finish them, write every audit row and log line, and exit 0.
 * Runs the build in dist/ (`npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, keyFrom, tempDataDir, testEnv, withTestStore } from '../helpers/proxy.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const BIN = path.join(root, 'bin/proxy.js')
const BUILT = path.join(root, 'dist/src/cli/main.js')

const STREAMS = 8
const SLOW_CALLS = 4

describe('proxy serve under SIGTERM with requests in flight', () => {
  const data = tempDataDir()
  let child: ChildProcess | null = null
  let stdout = ''
  let stderr = ''

  beforeAll(async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: this test runs the built binary. Run 'npm run build' first.`)
    expect((await cli(data.dir, ['providers', 'add', 'slowstream', '--type', 'mock', '--setting', 'chunks=10', '--setting', 'chunk_gap_ms=80'])).code).toBe(0)
    expect((await cli(data.dir, ['providers', 'add', 'slowcall', '--type', 'mock', '--setting', 'latency_ms=700'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'slowstream/mock-small'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'slow-model', '--target', 'slowcall/mock-slow'])).code).toBe(0)
  })
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL')
    data.cleanup()
  })

  it('finishes the requests, writes every audit row and exits 0', async () => {
    const key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-format', 'json'], { cwd: root, env: testEnv(data.dir), stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)))

    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 10 s; stderr: ${stderr}`)), 10_000)
      const check = () => {
        const m = /proxy is listening on (http:\/\/\S+)/.exec(stderr)
        if (m) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      }
      child!.stderr!.on('data', check)
      child!.once('exit', (code) => reject(new Error(`exited early with ${code}: ${stderr}`)))
    })

    const post = (body: unknown) =>
      fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })

    // Streams: wait until each has delivered its first chunk, so all are mid-way when the signal comes.
    const firstChunks: Array<Promise<void>> = []
    const streams = Array.from({ length: STREAMS }, (_, i) =>
      post({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `stream ${i}` }] }).then(async (res) => {
        const reader = res.body!.getReader()
        let text = ''
        let first!: () => void
        firstChunks[i] = new Promise<void>((r) => (first = r))
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          text += new TextDecoder().decode(value)
          first()
        }
        return { status: res.status, text }
      }),
    )
    const calls = Array.from({ length: SLOW_CALLS }, (_, i) => post({ model: 'slow-model', messages: [{ role: 'user', content: `slow ${i}` }] }).then(async (res) => ({ status: res.status, text: await res.text() })))
    await new Promise((r) => setTimeout(r, 200))
    await Promise.all(firstChunks)
    child.kill('SIGTERM')
    const signalled = Date.now()

    const answers = await Promise.all([...streams, ...calls])
    expect(answers.map((a) => a.status)).toEqual(Array(STREAMS + SLOW_CALLS).fill(200))
    for (const a of answers.slice(0, STREAMS)) expect(a.text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    for (const a of answers.slice(STREAMS)) expect(JSON.parse(a.text).object).toBe('chat.completion')

    expect(await exited).toBe(0)
    // Drained as soon as the last answer ended, not at the 10 s deadline (idle keep-alive sockets are closed).
    expect(Date.now() - signalled).toBeLessThan(8000)
    expect(stderr).toContain('Shutting down')

    const rows = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().orderBy('id').execute())
    expect(rows).toHaveLength(STREAMS + SLOW_CALLS)
    expect(rows.every((r) => r.status === 200 && r.client === 'app' && r.error_code === null)).toBe(true)
    const streamRows = rows.filter((r) => r.stream === 1)
    expect(streamRows).toHaveLength(STREAMS)
    expect(streamRows.every((r) => r.ttft_ms !== null && r.ttft_ms < r.latency_ms && r.completion_tokens! > 0)).toBe(true)
    expect(rows.filter((r) => r.model === 'slow-model' && r.latency_ms >= 700)).toHaveLength(SLOW_CALLS)
    const usage = await withTestStore(data.dir, (store) => store.db.selectFrom('usage').selectAll().orderBy('model').execute())
    expect(usage.map((u) => [u.model, u.requests])).toEqual([
      ['gpt-4o-mini', STREAMS],
      ['slow-model', SLOW_CALLS],
    ])

    // The asynchronous log destination was flushed: every request line and the lifecycle events are there.
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; event?: string })
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(STREAMS + SLOW_CALLS)
    expect(lines.filter((l) => l.event === 'start')).toHaveLength(1)
    expect(lines.filter((l) => l.event === 'shutdown').map((l) => l.msg)).toEqual(['shutting down: finishing open requests', 'proxy stopped'])
  }, 40_000)
})
