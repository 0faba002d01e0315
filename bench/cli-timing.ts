/**
 * `npx tsx bench/cli-timing.ts [--runs N]`: how long the CLI takes to answer, as the median wall time of
 * N runs (default 20) of `node -e 0`, `proxy --version` and `proxy keys ls` on a store with 100 keys,
 * and how long `proxy serve` takes until /readyz answers 200, for `node bin/proxy.js` (also started with
 * serve's V8 flags on node's command line, as the systemd unit does) and, when
 * `npm run build:exe` made one, the executable.
 * Not a test: it prints figures. Needs `npm run build` first (it runs bin/proxy.js).
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { exeName } from '../build/exe.js'
import { serveV8Flags } from '../src/cli/respawn.js'
import { openStore } from '../src/store/db.js'
import { addKey } from '../src/store/repos/provider-keys.js'
import { addProvider } from '../src/store/repos/providers.js'

const root = path.resolve(import.meta.dirname, '..')
const MASTER_KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='
const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } })
const runs = Number(values.runs)

const dataDir = mkdtempSync(path.join(tmpdir(), 'proxy-cli-timing-'))
const env = { ...process.env, PROXY_MASTER_KEY: MASTER_KEY, PROXY_DATA_DIR: dataDir, XDG_CACHE_HOME: path.join(dataDir, 'cache') }
const exe = path.join(root, 'dist', exeName())
try {
  const store = await openStore({ dataDir, env, keychain: null })
  await addProvider(store.db, { name: 'openai', type: 'openai', baseUrl: null, settings: {} })
  for (let i = 0; i < 100; i++) await addKey(store, { provider: 'openai', secret: `sk-bench-${i}-${'x'.repeat(40)}`, priority: 0, weight: 1 })
  await store.close()

  const cases: [string, string, string[]][] = [
    ['node -e 0', process.execPath, ['-e', '0']],
    ['proxy --version', process.execPath, ['bin/proxy.js', '--version']],
    ['proxy keys ls (100 keys)', process.execPath, ['bin/proxy.js', 'keys', 'ls']],
  ]
  if (existsSync(exe)) {
    cases.push(['executable --version', exe, ['--version']], ['executable keys ls', exe, ['keys', 'ls']])
  }
  const rows: (readonly [string, number])[] = cases.map(([name, file, args]) => [name, median(file, args)] as const)
  rows.push(['proxy serve ready', await medianOf(() => serveReady(process.execPath, ['bin/proxy.js']))])
  // as the systemd unit runs it: node given serve's flags itself, so no second node starts on node 20
  rows.push(['node <flags> proxy serve ready', await medianOf(() => serveReady(process.execPath, [...serveV8Flags(availableParallelism()), 'bin/proxy.js']))])
  if (existsSync(exe)) rows.push(['executable serve ready', await medianOf(() => serveReady(exe, []))])
  const base = rows[0]![1]
  console.log(`median of ${runs} runs (ms)\n`)
  console.log(`${'command'.padEnd(32)}${'median'.padStart(8)}${'- node -e 0'.padStart(13)}`)
  for (const [name, ms] of rows) console.log(`${name.padEnd(32)}${ms.toFixed(0).padStart(8)}${(ms - base).toFixed(0).padStart(13)}`)
} finally {
  rmSync(dataDir, { recursive: true, force: true })
}

function median(file: string, args: string[]): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    const r = spawnSync(file, args, { cwd: root, env, encoding: 'utf8' })
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
    if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  }
  return middle(times)
}

async function medianOf(run: () => Promise<number>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < runs; i++) times.push(await run())
  return middle(times)
}

function middle(times: number[]): number {
  times.sort((a, b) => a - b)
  return (times[(times.length - 1) >> 1]! + times[times.length >> 1]!) / 2
}

/** ms from starting `serve` until its /readyz answers 200; the server is then stopped */
async function serveReady(file: string, args: string[]): Promise<number> {
  const start = process.hrtime.bigint()
  const proc = spawn(file, [...args, 'serve', '--port', '0'], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  try {
    let err = ''
    const url = await new Promise<string>((resolve, reject) => {
      proc.stderr!.on('data', (d) => {
        err += d
        const m = /listening on (http:\/\/\S+)/.exec(err)
        if (m) resolve(m[1]!)
      })
      proc.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)))
    })
    for (;;) {
      const res = await fetch(`${url}/readyz`).catch(() => null)
      if (res?.status === 200) break
      await new Promise((r) => setTimeout(r, 5))
    }
    return Number(process.hrtime.bigint() - start) / 1e6
  } finally {
    proc.kill('SIGTERM')
    await exited
  }
}
