/**
 * Traces in the real binary (`node bin/proxy.js serve`, the build in dist/): without an OTLP endpoint no
 * OpenTelemetry module is loaded at all; with `--otlp-endpoint` the spans still queued at SIGTERM reach
 * the collector before the process exits.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOtlpCollector, type OtlpCollector } from '../fakes/otlp-collector.js'
import { loadedSources } from '../helpers/loaded-sources.js'
import { cli, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const BIN = path.join(root, 'bin/proxy.js')
const BUILT = path.join(root, 'dist/src/cli/main.js')
const recorder = path.join(root, 'test', 'helpers', 'record-loads.mjs')

/** Serves, sends one chat request, stops with SIGTERM; returns the exit code and the modules it loaded. */
async function serveOnce(dataDir: string, key: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; loaded: string[]; stderr: string }> {
  const record = path.join(dataDir, `loads-${Date.now()}.txt`)
  const child = spawn(process.execPath, ['--import', recorder, BIN, 'serve', '--port', '0', '--log-format', 'json', ...args], {
    cwd: root,
    env: { ...process.env, ...testEnv(dataDir), PROXY_RECORD_LOADS: record, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  child.stdout!.resume()
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 10 s; stderr: ${stderr}`)), 10_000)
    child.stderr!.on('data', () => {
      const m = /proxy is listening on (http:\/\/\S+)/.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${stderr}`)))
  })
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }) })
  expect(res.status).toBe(200)
  await res.text()
  child.kill('SIGTERM')
  const code = await exited
  return { code, loaded: loadedSources(record), stderr }
}

describe('proxy serve with and without traces', () => {
  const data = tempDataDir()
  let collector: OtlpCollector
  let key: string

  beforeAll(async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: this test runs the built binary. Run 'npm run build' first.`)
    collector = await startOtlpCollector()
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
  })
  afterAll(async () => {
    await collector.close()
    data.cleanup()
  })

  it('loads no OpenTelemetry module when no endpoint is set', async () => {
    const { code, loaded } = await serveOnce(data.dir, key, [], {})
    expect(code).toBe(0)
    // @opentelemetry/api itself comes with prom-client (its process CPU metric), traces on or off
    expect(loaded.filter((m) => m.includes('@opentelemetry/') && !m.includes('@opentelemetry/api/'))).toEqual([])
    expect(loaded.filter((m) => m.includes('/tracing/') && !m.endsWith('/settings.js'))).toEqual([])
  })

  it('with --otlp-endpoint, exports the spans still queued when it is stopped', async () => {
    // a long schedule delay: the spans can only arrive through the flush at shutdown
    const { code, loaded } = await serveOnce(data.dir, key, ['--otlp-endpoint', collector.url], { OTEL_BSP_SCHEDULE_DELAY: '600000' })
    expect(code).toBe(0)
    expect(loaded.some((m) => m.includes('@opentelemetry/sdk-trace-base'))).toBe(true)
    expect(collector.spans.map((s) => s.kind).sort()).toEqual(['client', 'server'])
    expect(collector.spans.find((s) => s.kind === 'server')!.attributes).toMatchObject({ 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.provider.name': 'mock', 'proxy.client': 'app' })
  })
})
