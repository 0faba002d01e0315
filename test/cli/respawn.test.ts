/**
 * `proxy serve` starts node again with `--no-memory-reducer` (and, on one CPU, `--single-threaded-gc`):
 * in place of itself where node has process.execve, else as a child it stands in for: signals go to the
 * server once, its exit status comes back, and the server stops by itself if the `proxy` process is
 * killed. The process tests run the build in dist/ (`npm run build`) on Linux (they find the server
 * process with `ps --ppid`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { gcThreads, memoryReducerState, respawnArgs, serveEnv } from '../../src/cli/respawn.js'
import { cli, eventually, keyFrom, tempDataDir, testEnv } from '../helpers/proxy.js'
import { assertBuilt } from '../limits/serve-process.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const BIN = path.join(root, 'bin/proxy.js')

describe('respawnArgs', () => {
  const argv = ['/usr/bin/node', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000']

  it('adds the flag for serve, after node options already given', () => {
    expect(respawnArgs(argv, ['--max-old-space-size=512'], 'linux', 4)).toEqual(['--max-old-space-size=512', '--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
  })

  it('on one CPU, also has V8 collect garbage on the main thread, unless node was told how', () => {
    expect(respawnArgs(argv, [], 'linux', 1)).toEqual(['--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4', '--single-threaded-gc', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
    expect(respawnArgs(argv, ['--no-single-threaded-gc'], 'linux', 1)).toEqual(['--no-single-threaded-gc', '--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
    expect(respawnArgs(argv, [], 'linux', 2)).toEqual(['--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
  })

  it("keeps a young-generation size of node's own command line", () => {
    expect(respawnArgs(argv, ['--max-semi-space-size=32'], 'linux', 4)).toEqual(['--max-semi-space-size=32', '--no-memory-reducer', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
    // either bound decides both: a minimum of 4 beside a maximum of 2 would contradict it
    expect(respawnArgs(argv, ['--max_semi_space_size=2'], 'linux', 4)).toEqual(['--max_semi_space_size=2', '--no-memory-reducer', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
    expect(respawnArgs(argv, ['--min-semi-space-size=8'], 'linux', 4)).toEqual(['--min-semi-space-size=8', '--no-memory-reducer', '/opt/proxy/bin/proxy.js', 'serve', '--port', '9000'])
  })

  it('leaves every other command alone', () => {
    expect(respawnArgs(['/usr/bin/node', '/opt/proxy/bin/proxy.js', 'keys', 'ls'], [], 'linux')).toBeNull()
    expect(respawnArgs(['/usr/bin/node', '/opt/proxy/bin/proxy.js'], [], 'linux')).toBeNull()
  })

  it("keeps node's own command line when it already decides, either way, and on Windows", () => {
    expect(respawnArgs(argv, ['--no-memory-reducer'], 'linux')).toBeNull()
    expect(respawnArgs(argv, ['--memory-reducer'], 'linux')).toBeNull()
    expect(respawnArgs(argv, ['--no_memory_reducer'], 'darwin')).toBeNull()
    expect(respawnArgs(argv, [], 'win32')).toBeNull()
    expect(respawnArgs(argv, ['--no-memory-reducer'], 'linux', 1)).toBeNull()
  })
})

describe('serveEnv', () => {
  it("fixes glibc's malloc thresholds, unless the environment already sets them", () => {
    expect(serveEnv({ PATH: '/usr/bin' })).toEqual({ PATH: '/usr/bin', MALLOC_TRIM_THRESHOLD_: '131072' })
    // a tunable of another part of glibc decides nothing about malloc
    expect(serveEnv({ GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX2' })).toEqual({ GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX2', MALLOC_TRIM_THRESHOLD_: '131072' })
    for (const own of [{ MALLOC_TRIM_THRESHOLD_: '0' }, { MALLOC_MMAP_THRESHOLD_: '1048576' }, { MALLOC_TOP_PAD_: '0' }, { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=65536' }]) {
      expect(serveEnv({ PATH: '/usr/bin', ...own })).toEqual({ PATH: '/usr/bin', ...own })
    }
  })
})

describe('gcThreads', () => {
  it('is the main thread only when the last word on it says so', () => {
    expect(gcThreads([])).toBe('parallel')
    expect(gcThreads(['--single-threaded-gc'])).toBe('main thread')
    expect(gcThreads(['--single_threaded_gc', '--no-single-threaded-gc'])).toBe('parallel')
    expect(gcThreads(['--single-threaded'])).toBe('main thread')
  })
})

describe('memoryReducerState', () => {
  it('is on unless the last word on it turns it off', () => {
    expect(memoryReducerState([])).toBe('on')
    expect(memoryReducerState(['--no-memory-reducer'])).toBe('off')
    expect(memoryReducerState(['--no-memory-reducer', '--memory-reducer'])).toBe('on')
    expect(memoryReducerState(['--memory-reducer', '--no_memory_reducer'])).toBe('off')
  })
})

interface Started {
  proc: ChildProcess
  url: string
  out: () => string
  err: () => string
  /** resolves when the `proxy` process has exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** resolves when every process writing to the pipes has closed them */
  closed: Promise<void>
}

const running: ChildProcess[] = []

const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset']).status === 0

async function startServe(dataDir: string, args: string[] = [], opts: { detached?: boolean; oneCpu?: boolean } = {}): Promise<Started> {
  const command = [process.execPath, BIN, 'serve', '--port', '0', '--log-format', 'json', ...args]
  // taskset execs node in its own place: the pid is the proxy process's either way
  if (opts.oneCpu) command.unshift('taskset', '-c', '0')
  const proc = spawn(command[0]!, command.slice(1), {
    env: testEnv(dataDir),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  })
  running.push(proc)
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 15 s; stderr: ${err}`)), 15_000)
    proc.stderr!.on('data', () => {
      const m = /proxy is listening on (http:\/\/\S+)/.exec(err)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    proc.once('exit', (code) => reject(new Error(`exited early with ${code}: ${err}`)))
  })
  return { proc, url, out: () => out, err: () => err, exited, closed }
}

function childrenOf(pid: number): number[] {
  const res = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
  return res.stdout.split('\n').map((s) => s.trim()).filter(Boolean).map(Number)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function cmdline(pid: number): string[] {
  const res = spawnSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' })
  return res.stdout.split('\0').filter(Boolean)
}

function environ(pid: number): string[] {
  const res = spawnSync('cat', [`/proc/${pid}/environ`], { encoding: 'utf8' })
  return res.stdout.split('\0').filter(Boolean)
}

function startLine(out: string): Record<string, unknown> {
  const line = out.split('\n').find((l) => l.includes('"proxy listening"'))
  if (!line) throw new Error(`no start line in: ${out}`)
  return JSON.parse(line) as Record<string, unknown>
}

const count = (text: string, needle: string) => text.split(needle).length - 1

/** A fresh data dir for each test (data.dir), and every server started by it killed after it. */
function serveHooks(): { readonly dir: string } {
  let current: ReturnType<typeof tempDataDir>
  beforeAll(() => assertBuilt())
  beforeEach(() => {
    current = tempDataDir()
  })
  afterEach(() => {
    for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    current.cleanup()
  })
  return {
    get dir() {
      return current.dir
    },
  }
}

/** node 22.15 and later replace the process instead of starting a child (runRespawned) */
const hasExecve = typeof (process as { execve?: unknown }).execve === 'function'

describe.runIf(process.platform === 'linux' && hasExecve)('proxy serve in place of itself (process.execve), without the memory reducer', () => {
  const data = serveHooks()

  it('is one process, the one started, with the flags on its command line; SIGTERM drains it and it exits 0', async () => {
    const s = await startServe(data.dir, ['--demo'])
    expect(childrenOf(s.proc.pid!)).toEqual([])
    expect(cmdline(s.proc.pid!)).toEqual(expect.arrayContaining(['--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4']))
    expect(cmdline(s.proc.pid!).includes('--single-threaded-gc')).toBe(availableParallelism() === 1)
    expect(environ(s.proc.pid!)).toContain('MALLOC_TRIM_THRESHOLD_=131072')
    const line = await eventually(() => s.out(), (o) => o.includes('"proxy listening"'), 5000)
    expect(startLine(line)).toMatchObject({ memoryReducer: 'off', gc: availableParallelism() === 1 ? 'main thread' : 'parallel' })
    s.proc.kill('SIGTERM')
    expect(await s.exited).toEqual({ code: 0, signal: null })
    expect(count(s.out(), '"proxy stopped"')).toBe(1)
  })
})

describe.skipIf(process.platform !== 'linux' || hasExecve)('proxy serve in a child node without the memory reducer (node 20: no process.execve)', () => {
  const data = serveHooks()

  it('runs the server in a child node with the flag; SIGTERM to proxy drains it and both exit 0', async () => {
    const s = await startServe(data.dir, ['--demo'])
    const [server, ...more] = childrenOf(s.proc.pid!)
    expect(more).toEqual([])
    expect(cmdline(server!)).toEqual(expect.arrayContaining(['--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4']))
    expect(cmdline(server!).includes('--single-threaded-gc')).toBe(availableParallelism() === 1)
    expect(cmdline(s.proc.pid!)).not.toContain('--no-memory-reducer')
    expect(environ(server!)).toContain('MALLOC_TRIM_THRESHOLD_=131072')
    expect(environ(s.proc.pid!)).not.toContain('MALLOC_TRIM_THRESHOLD_=131072')
    const line = await eventually(() => s.out(), (o) => o.includes('"proxy listening"'), 5000)
    expect(startLine(line)).toMatchObject({ memoryReducer: 'off', gc: availableParallelism() === 1 ? 'main thread' : 'parallel' })

    const key = keyFrom(s.err())
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
    })
    expect(res.status).toBe(200)

    s.proc.kill('SIGTERM')
    expect(await s.exited).toEqual({ code: 0, signal: null })
    await s.closed
    expect(alive(server!)).toBe(false)
    expect(count(s.out(), '"proxy stopped"')).toBe(1)
  })

  it.skipIf(!hasTaskset)('on one CPU (taskset) the server also collects garbage on its main thread only', async () => {
    const s = await startServe(data.dir, [], { oneCpu: true })
    const [server] = childrenOf(s.proc.pid!)
    expect(cmdline(server!)).toEqual(expect.arrayContaining(['--no-memory-reducer', '--max-semi-space-size=4', '--min-semi-space-size=4', '--single-threaded-gc']))
    const line = await eventually(() => s.out(), (o) => o.includes('"proxy listening"'), 5000)
    expect(startLine(line)).toMatchObject({ memoryReducer: 'off', gc: 'main thread' })
    s.proc.kill('SIGTERM')
    expect(await s.exited).toEqual({ code: 0, signal: null })
  })

  it('a Ctrl-C (SIGINT to the whole process group) reaches the server once and it stops cleanly', async () => {
    const s = await startServe(data.dir, [], { detached: true })
    process.kill(-s.proc.pid!, 'SIGINT')
    expect(await s.exited).toEqual({ code: 0, signal: null })
    await s.closed
    expect(count(s.err(), 'Shutting down')).toBe(1)
    expect(count(s.out(), '"proxy stopped"')).toBe(1)
  })

  it('ignores a second SIGTERM sent straight to the server while it drains (a service manager signals every process)', async () => {
    expect((await cli(data.dir, ['providers', 'add', 'slow', '--type', 'mock', '--setting', 'chunks=15', '--setting', 'chunk_gap_ms=100'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'slow-model', '--target', 'slow/s'])).code).toBe(0)
    const key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    const s = await startServe(data.dir, ['--drain-seconds', '10'])
    const [server] = childrenOf(s.proc.pid!)

    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow-model', stream: true, messages: [{ role: 'user', content: 'write a while' }] }),
    })
    expect(res.status).toBe(200)
    const body = res.text()

    s.proc.kill('SIGTERM')
    await eventually(() => s.err(), (e) => e.includes('Shutting down'), 5000)
    process.kill(server!, 'SIGTERM')

    const text = await body
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    expect(await s.exited).toEqual({ code: 0, signal: null })
    expect(count(s.out(), '"proxy stopped"')).toBe(1)
  })

  it('the server drains and exits by itself when the proxy process is killed outright', async () => {
    const s = await startServe(data.dir)
    const [server] = childrenOf(s.proc.pid!)
    s.proc.kill('SIGKILL')
    expect(await s.exited).toEqual({ code: null, signal: 'SIGKILL' })
    // The server still holds the pipes: they close when it has stopped.
    await s.closed
    expect(count(s.out(), '"proxy stopped"')).toBe(1)
    await eventually(() => alive(server!), (a) => !a, 5000)
  })

  it("hands back the server's exit status: a taken port is exit 1 with the reason", async () => {
    const taken: Server = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    try {
      const port = (taken.address() as { port: number }).port
      const proc = spawn(process.execPath, [BIN, 'serve', '--port', String(port)], { env: testEnv(data.dir), stdio: ['ignore', 'pipe', 'pipe'] })
      running.push(proc)
      let err = ''
      proc.stderr!.on('data', (d) => (err += d))
      const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)))
      expect(code).toBe(1)
      expect(err).toContain('the port is taken')
    } finally {
      taken.close()
    }
  })
})
