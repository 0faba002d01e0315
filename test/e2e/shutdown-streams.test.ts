/**
 * The real binary with 20 streams open when SIGTERM arrives and a short --drain-seconds: the streams
 * that can finish within the drain finish ([DONE]); the rest end at the deadline with an OpenAI-shaped
 * `server_shutting_down` error event and a clean end of stream (no reset). Every request is audited,
 * and the process exits 0. Runs the build in dist/ (`npm run build`).
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

const QUICK = 8 // 6 chunks 100 ms apart: done in well under the drain
const SLOW = 12 // 80 chunks 100 ms apart: still running at the deadline
const DRAIN_S = 1.5

interface StreamResult {
  status: number
  text: string
  /** the body ended normally (no connection reset) */
  clean: boolean
}

describe('proxy serve: SIGTERM with 20 open streams and --drain-seconds', () => {
  const data = tempDataDir()
  let child: ChildProcess | null = null
  let stderr = ''
  let stdout = ''

  beforeAll(async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: this test runs the built binary. Run 'npm run build' first.`)
    expect((await cli(data.dir, ['providers', 'add', 'quick', '--type', 'mock', '--setting', 'chunks=6', '--setting', 'chunk_gap_ms=100'])).code).toBe(0)
    expect((await cli(data.dir, ['providers', 'add', 'slow', '--type', 'mock', '--setting', 'chunks=80', '--setting', 'chunk_gap_ms=100'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'quick-model', '--target', 'quick/q'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'slow-model', '--target', 'slow/s'])).code).toBe(0)
  })
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL')
    data.cleanup()
  })

  it('finishes what it can, ends the rest with an error event at the deadline, audits all and exits 0', async () => {
    const key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-format', 'json', '--drain-seconds', String(DRAIN_S)], { cwd: root, env: testEnv(data.dir), stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)))
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 10 s; stderr: ${stderr}`)), 10_000)
      child!.stderr!.on('data', () => {
        const m = /proxy is listening on (http:\/\/\S+)/.exec(stderr)
        if (m) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      })
      child!.once('exit', (code) => reject(new Error(`exited early with ${code}: ${stderr}`)))
    })

    const firsts: Array<Promise<void>> = []
    const open = (model: string): Promise<StreamResult> => {
      let first!: () => void
      firsts.push(new Promise<void>((r) => (first = r)))
      return fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: `please write something long enough for ${model}` }] }),
      }).then(async (res) => {
        const reader = res.body!.getReader()
        const decoder = new TextDecoder()
        let text = ''
        try {
          for (;;) {
            const { value, done } = await reader.read()
            if (done) break
            text += decoder.decode(value, { stream: true })
            first()
          }
          return { status: res.status, text, clean: true }
        } catch {
          return { status: res.status, text, clean: false }
        }
      })
    }
    const streams = [...Array.from({ length: QUICK }, () => open('quick-model')), ...Array.from({ length: SLOW }, () => open('slow-model'))]
    await Promise.all(firsts)
    child.kill('SIGTERM')
    const signalled = Date.now()
    const results = await Promise.all(streams)
    const code = await exited
    const took = Date.now() - signalled

    expect(results.map((r) => r.status)).toEqual(Array(QUICK + SLOW).fill(200))
    expect(results.every((r) => r.clean)).toBe(true)
    for (const r of results.slice(0, QUICK)) expect(r.text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    for (const r of results.slice(QUICK)) {
      const events = r.text.trim().split('\n\n')
      expect(events.length).toBeGreaterThan(2)
      // every event before the last is a whole chunk; the last is the error, then the stream closed
      for (const e of events.slice(0, -1)) expect(JSON.parse(e.replace(/^data: /, '')).object).toBe('chat.completion.chunk')
      const last = JSON.parse(events.at(-1)!.replace(/^data: /, '')) as { error: Record<string, unknown> }
      expect(last.error).toEqual({ message: expect.stringContaining('shutting down'), type: 'service_unavailable', param: null, code: 'server_shutting_down' })
      expect(r.text).not.toContain('[DONE]')
    }
    expect(code).toBe(0)
    // Cut at the deadline, not when the slow streams would have ended (8 s).
    expect(took).toBeGreaterThanOrEqual(DRAIN_S * 1000 - 100)
    expect(took).toBeLessThan(DRAIN_S * 1000 + 4000)
    expect(stderr).toContain(`Shutting down: finishing open requests (up to ${DRAIN_S} s)`)
    // one shutdown listener per open stream is expected, not a leak: no MaxListenersExceededWarning
    expect(stderr).not.toContain('MaxListenersExceeded')

    const rows = await withTestStore(data.dir, (store) => store.db.selectFrom('audit').selectAll().execute())
    expect(rows).toHaveLength(QUICK + SLOW)
    const quick = rows.filter((r) => r.model === 'quick-model')
    const slow = rows.filter((r) => r.model === 'slow-model')
    expect(quick.every((r) => r.status === 200 && r.error_code === null && r.completion_tokens! > 0)).toBe(true)
    expect(slow).toHaveLength(SLOW)
    expect(slow.every((r) => r.status === 200 && r.error_code === 'server_shutting_down' && r.stream === 1)).toBe(true)
    const usage = await withTestStore(data.dir, (store) => store.db.selectFrom('usage').selectAll().orderBy('model').execute())
    expect(usage.map((u) => [u.model, u.requests])).toEqual([
      ['quick-model', QUICK],
      ['slow-model', SLOW],
    ])
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; event?: string })
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(QUICK + SLOW)
    expect(lines.filter((l) => l.event === 'shutdown').map((l) => l.msg)).toEqual(['shutting down: finishing open requests', 'proxy stopped'])
    // The local admin files are gone after a clean stop.
    expect(existsSync(path.join(data.dir, 'admin.token'))).toBe(false)
    expect(existsSync(path.join(data.dir, 'server.json'))).toBe(false)
  }, 40_000)
})
