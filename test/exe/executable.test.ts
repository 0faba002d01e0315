/**
 * The single executable (build/exe.ts), as a user gets it: copied alone into an empty folder, run with a
 * PATH that holds no node and no node_modules anywhere above it. The build is part of the test (about
 * 20 s), so it checks what the sources make now.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildExe, seaUnsupported } from '../../build/exe.js'
import { keyFrom } from '../helpers/proxy.js'

const root = path.resolve(import.meta.dirname, '../..')
const unsupported = seaUnsupported()

describe.skipIf(unsupported !== null)(`the proxy executable${unsupported ? ` (skipped: ${unsupported})` : ''}`, () => {
  let dir: string
  let exe: string
  let env: Record<string, string>
  const running: ChildProcess[] = []

  beforeAll(async () => {
    const built = await buildExe()
    dir = mkdtempSync(path.join(tmpdir(), 'proxy-exe-'))
    const folder = path.join(dir, 'app')
    const emptyBin = path.join(dir, 'bin')
    mkdirSync(folder)
    mkdirSync(emptyBin)
    exe = path.join(folder, 'proxy')
    copyFileSync(built, exe)
    spawnSync('chmod', ['755', exe])
    env = {
      PATH: emptyBin,
      HOME: dir,
      XDG_DATA_HOME: path.join(dir, 'data'),
      XDG_CACHE_HOME: path.join(dir, 'cache'),
      PROXY_KEYCHAIN: 'off',
    }
  }, 240_000)

  afterAll(() => {
    for (const proc of running) proc.kill('SIGKILL')
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const run = (args: string[], stdin?: string) => {
    const res = spawnSync(exe, args, { cwd: path.dirname(exe), env, input: stdin, encoding: 'utf8', timeout: 30_000 })
    return { code: res.status, stdout: res.stdout, stderr: res.stderr }
  }

  it('is alone in its folder, with no node to find', () => {
    expect(readdirSync(path.dirname(exe))).toEqual(['proxy'])
    expect(spawnSync('node', ['-e', '0'], { env }).error).toMatchObject({ code: 'ENOENT' })
  })

  it('prints the package version', () => {
    const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version
    const res = run(['--version'])
    expect(res).toMatchObject({ code: 0, stdout: `${version}\n` })
  })

  it('adds and lists upstream keys in its store, loading SQLite from the cache', () => {
    expect(run(['providers', 'add', 'openai', '--type', 'openai'])).toMatchObject({ code: 0 })
    const added = run(['keys', 'add', 'openai', '--label', 'exe-key'], 'sk-exe-test-0123456789abcdef\n')
    expect(added.stderr).toBe('')
    expect(added.code).toBe(0)
    const listed = run(['keys', 'ls'])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toContain('exe-key')
    expect(listed.stdout).not.toContain('0123456789abcdef')
    const cached = readdirSync(path.join(env.XDG_CACHE_HOME!, 'proxy', 'native'), { recursive: true }).map(String)
    expect(cached.some((f) => f.endsWith('better_sqlite3.node'))).toBe(true)
  })

  it('loads the keyring addon it carries when doctor probes the OS keychain', () => {
    const manifest = JSON.parse(readFileSync(path.join(root, 'dist', 'sea', 'manifest.json'), 'utf8')) as { files: Record<string, unknown> }
    if (!manifest.files['keyring.node']) return // no @napi-rs/keyring build for this platform: the key file serves
    const { PROXY_KEYCHAIN: _off, ...probing } = env
    const res = spawnSync(exe, ['doctor', '--skip-providers'], { cwd: path.dirname(exe), env: probing, encoding: 'utf8', timeout: 30_000 })
    expect(res.stdout).toMatch(/OS keychain/)
    expect(res.stdout).not.toContain('could not be loaded')
    const cached = readdirSync(path.join(env.XDG_CACHE_HOME!, 'proxy', 'native'), { recursive: true }).map(String)
    expect(cached.some((f) => f.endsWith('keyring.node'))).toBe(true)
  })

  it('service print starts the executable itself, with a writable cache folder for its addons', () => {
    const res = run(['service', 'print', '--data-dir', '/var/lib/proxy'])
    expect(res.code).toBe(0)
    expect(res.stdout).toContain(`\nExecStart=${exe} serve --data-dir /var/lib/proxy --drain-seconds 25\n`)
    expect(res.stdout).toContain('\nCacheDirectory=proxy\n')
    expect(res.stdout).toContain('\nEnvironment=XDG_CACHE_HOME=/var/cache\n')
  })

  it('serves the demo to the OpenAI SDK, and top --once shows the request', async () => {
    const proc = spawn(exe, ['serve', '--demo', '--port', '0'], { cwd: path.dirname(exe), env, stdio: ['ignore', 'pipe', 'pipe'] })
    running.push(proc)
    let out = ''
    proc.stdout!.on('data', (d) => (out += d))
    proc.stderr!.on('data', (d) => (out += d))
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 20 s: ${out}`)), 20_000)
      const look = () => {
        const m = /proxy is listening on (http:\/\/\S+)/.exec(out)
        if (m && /sk-proxy-/.test(out)) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      }
      proc.stdout!.on('data', look)
      proc.stderr!.on('data', look)
      proc.once('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)))
    })

    // one process: the executable never starts a second node for V8 flags (build/exe.ts)
    if (process.platform === 'linux') expect(spawnSync('ps', ['-o', 'pid=', '--ppid', String(proc.pid)], { encoding: 'utf8' }).stdout.trim()).toBe('')

    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: keyFrom(out), maxRetries: 0 })
    const reply = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from the executable' }] })
    expect(reply.choices[0]!.message.content).toContain('hello from the executable')

    const top = run(['top', '--once'])
    expect(top.stderr).toBe('')
    expect(top.code).toBe(0)
    expect(top.stdout).toContain('proxy top')
    expect(top.stdout).toContain('gpt-4o-mini')

    proc.kill('SIGTERM')
    expect(await exited).toBe(0)
    // the writer thread ran from the script the executable carries, rather than falling back
    expect(out).not.toContain('audit thread unavailable')
  }, 60_000)
})
