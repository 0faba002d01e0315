/**
 * `npx tsx bench/cli-timing.ts [--runs N]`: how long the CLI takes to answer, as the median wall time of
 * N runs (default 20) of `node -e 0`, `proxy --version` and `proxy keys ls` on a store with 100 keys.
 * Not a test: it prints figures. Needs `npm run build` first (it runs bin/proxy.js).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { openStore } from '../src/store/db.js'
import { addKey } from '../src/store/repos/provider-keys.js'
import { addProvider } from '../src/store/repos/providers.js'

const root = path.resolve(import.meta.dirname, '..')
const MASTER_KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='
const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } })
const runs = Number(values.runs)

const dataDir = mkdtempSync(path.join(tmpdir(), 'proxy-cli-timing-'))
const env = { ...process.env, PROXY_MASTER_KEY: MASTER_KEY, PROXY_DATA_DIR: dataDir }
try {
  const store = await openStore({ dataDir, env, keychain: null })
  await addProvider(store.db, { name: 'openai', type: 'openai', baseUrl: null, settings: {} })
  for (let i = 0; i < 100; i++) await addKey(store, { provider: 'openai', secret: `sk-bench-${i}-${'x'.repeat(40)}`, priority: 0, weight: 1 })
  await store.close()

  const cases: [string, string[]][] = [
    ['node -e 0', ['-e', '0']],
    ['proxy --version', ['bin/proxy.js', '--version']],
    ['proxy keys ls (100 keys)', ['bin/proxy.js', 'keys', 'ls']],
  ]
  const rows = cases.map(([name, args]) => [name, median(args)] as const)
  const base = rows[0]![1]
  console.log(`median of ${runs} runs (ms)\n`)
  console.log(`${'command'.padEnd(26)}${'median'.padStart(8)}${'- node -e 0'.padStart(13)}`)
  for (const [name, ms] of rows) console.log(`${name.padEnd(26)}${ms.toFixed(0).padStart(8)}${(ms - base).toFixed(0).padStart(13)}`)
} finally {
  rmSync(dataDir, { recursive: true, force: true })
}

function median(args: string[]): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8' })
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  }
  times.sort((a, b) => a - b)
  return (times[(runs - 1) >> 1]! + times[runs >> 1]!) / 2
}
