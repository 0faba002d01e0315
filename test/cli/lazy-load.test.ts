/**
 * Each command loads only what it uses: the built binary runs with a preload that records every
 * module it loads, and the test fails if a static import brings a heavy dependency back.
 */
import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadedSources } from '../helpers/loaded-sources.js'
import { cliOk, tempDataDir, testEnv } from '../helpers/proxy.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const recorder = path.join(repoRoot, 'test', 'helpers', 'record-loads.mjs')
const data = tempDataDir()

/** Runs `node bin/proxy.js ...args` and returns the paths of every module it loaded. */
function loadedBy(args: string[]): string[] {
  const record = path.join(data.dir, `loads-${args.join('-')}.txt`)
  const r = spawnSync(process.execPath, ['--import', recorder, path.join(repoRoot, 'bin', 'proxy.js'), ...args], {
    env: { ...process.env, ...testEnv(data.dir), PROXY_RECORD_LOADS: record },
    encoding: 'utf8',
  })
  expect(r.status, r.stderr).toBe(0)
  return loadedSources(record)
}

/**
 * Starts `proxy serve` on port 0 with the recorder, stops it once it listens (and has answered GET
 * `probe`, when given), and returns what it loaded.
 */
async function servedLoads(env: Record<string, string>, probe?: string): Promise<string[]> {
  const record = path.join(data.dir, `loads-serve-${Object.keys(env).length}-${probe?.slice(1) ?? ''}.txt`)
  const child = spawn(process.execPath, ['--import', recorder, path.join(repoRoot, 'bin', 'proxy.js'), 'serve', '--port', '0'], {
    env: { ...process.env, ...testEnv(data.dir), ...env, PROXY_RECORD_LOADS: record },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 15 s:\n${stderr}`)), 15_000)
      child.stderr!.on('data', (d) => {
        stderr += d
        if (/listening on http:\/\/127\.0\.0\.1:[1-9]/.test(stderr)) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)))
    })
    if (probe) {
      const url = /listening on (http:\/\/\S+)/.exec(stderr)![1]!
      expect((await fetch(`${url}${probe}`)).status).toBe(200)
    }
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  return loadedSources(record)
}

const packages = (loaded: string[]) => new Set(loaded.flatMap((m) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m)?.[1] ?? []))
const ours = (loaded: string[]) => loaded.flatMap((m) => /dist\/(src\/.*)$/.exec(m)?.[1] ?? [])

/** Modules that do a command's work: the store, the server and the rest, loaded only by the commands that need them. */
const IMPLEMENTATION = /^src\/(store\/(db|migrate|master-key|snapshot|repos\/)|server\/|cli\/admin-client|telemetry\/|gateway\/|limits\/|cli\/doctor-checks|cli\/completion-script|cli\/demo|cli\/serve-config|cli\/top\/(?!index))/
const HEAVY = ['ink', 'react', 'h3', 'srvx', 'undici', 'ioredis', 'pino', 'prom-client', '@opentelemetry/api', '@aws-sdk/client-s3']
const awsSdk = (loaded: string[]) => [...packages(loaded)].filter((p) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/'))

beforeAll(async () => {
  await cliOk(data.dir, ['providers', 'add', 'openai', '--type', 'openai'])
  await cliOk(data.dir, ['keys', 'add', 'openai', '--label', 'main'], 'sk-test-000000000000000000000000')
})
afterAll(() => data.cleanup())

describe('what a command loads', () => {
  it('proxy --version reads the version without loading the command tree', () => {
    const loaded = loadedBy(['--version'])
    expect([...packages(loaded)]).toEqual([])
    expect(ours(loaded).sort()).toEqual(['src/cli/respawn.js'])
  })

  it.each([['-V', 'keys'], ['--help'], ['keys', '--help']].map((args) => [args.join(' '), args] as const))('proxy %s loads commander and the command definitions, nothing else', (_name, args) => {
    const loaded = loadedBy([...args])
    expect([...packages(loaded)]).toEqual(['commander'])
    expect(ours(loaded).filter((m) => IMPLEMENTATION.test(m))).toEqual([])
    expect(ours(loaded)).toContain('src/cli/keys.js')
  })

  it('proxy keys ls opens the store without the server, Ink, React, undici, ioredis or pino', () => {
    const loaded = loadedBy(['keys', 'ls'])
    const used = packages(loaded)
    // 12 on node 20, 13 (installed as better-sqlite3-napi) on 22 and later: src/store/sqlite-driver.ts
    expect(used.has('better-sqlite3') || used.has('better-sqlite3-napi')).toBe(true)
    // read through the bundle's metafile: the store's query builder is there, so the mapping works
    expect(used.has('kysely')).toBe(true)
    for (const name of HEAVY) expect(used.has(name), `${name} was loaded`).toBe(false)
    expect(ours(loaded).filter((m) => /^src\/(server\/|cli\/admin-client|telemetry\/|gateway\/|limits\/|cli\/top\/(?!index))/.test(m))).toEqual([])
  })

  it('proxy audit prune and ls read the capture store setting without loading the AWS SDK when none is named', () => {
    expect(awsSdk(loadedBy(['audit', 'prune', '--older-than', '30d']))).toEqual([])
    expect(awsSdk(loadedBy(['audit', 'ls']))).toEqual([])
  })

  it('proxy serve answers its probes without loading h3 and srvx, which only its other routes need', async () => {
    for (const probe of ['/readyz', '/health']) {
      const loaded = packages(await servedLoads({}, probe))
      expect(loaded.has('h3') || loaded.has('srvx'), probe).toBe(false)
      // the recorder does see the server's packages
      expect(loaded.has('undici'), probe).toBe(true)
    }
    const listed = packages(await servedLoads({}, '/'))
    expect(listed.has('h3') && listed.has('srvx')).toBe(true)
  }, 60_000)

  it('proxy serve loads the Messages and Responses endpoints only when a request calls them', async () => {
    const started = ours(await servedLoads({}, '/readyz'))
    // their shapes (how their errors are written) are loaded at start; their code and schemas are not
    const agents = started.filter((m) => /^src\/(server\/(messages|responses)\/(endpoints|request|response|stream)|core\/(messages|responses)-schema)\.js$/.test(m))
    expect(agents).toEqual([])
    // the recorder does see the server's own modules
    expect(started).toContain('src/server/lifecycle.js')
  }, 30_000)

  it('proxy serve loads the AWS SDK only with a capture store', async () => {
    expect(awsSdk(await servedLoads({}))).toEqual([])
    // nothing listens at the endpoint: the server starts anyway and warns
    const withStore = await servedLoads({ PROXY_CAPTURE_STORE: 's3://captures/audit', PROXY_S3_ENDPOINT: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' })
    expect(awsSdk(withStore)).toContain('@aws-sdk/client-s3')
  }, 40_000)
})
