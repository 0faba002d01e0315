/**
 * `tsx bench/cache-hits.ts`: one bounded run comparing the response cache's hit path with the passthrough.
 * Chat completions (JSON) at a fixed number of connections, a few seconds each, against: the bare Node
 * passthrough in front of the fake upstream; the proxy with no cache policy (every request goes upstream);
 * and the proxy answering every request from its cache (one request, repeated). Needs `npm run build`.
 * Prints one JSON object; the figures go to docs/performance.md, not into code.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const root = path.resolve(import.meta.dirname, '..')
const { values: flags } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '16' } } })
const SECONDS = Number(flags.seconds)
const CONNECTIONS = Number(flags.connections)
const MASTER_KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='
const body = (model: string) => JSON.stringify({ model, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16 })
const children: ChildProcess[] = []

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'proxy-cache-bench-'))
  const env = { ...process.env, PROXY_DATA_DIR: work, PROXY_MASTER_KEY: MASTER_KEY, PROXY_KEYCHAIN: 'off', PROXY_LOG_LEVEL: 'warn' }
  try {
    const upstream = await start([path.join(root, 'bench/fake-upstream.mjs'), '0'], /listening (\d+)/, 'stdout')
    const upstreamUrl = `http://127.0.0.1:${upstream}`
    const passthrough = await start([path.join(root, 'bench/passthrough.mjs'), '0', upstreamUrl], /listening (\d+)/, 'stdout')
    const cli = (args: string[], input?: string) => {
      const r = spawnSync(process.execPath, [path.join(root, 'bin/proxy.js'), ...args], { env, input, encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`proxy ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    cli(['providers', 'add', 'up', '--type', 'openai-compatible', '--base-url', `${upstreamUrl}/v1`])
    cli(['keys', 'add', 'up', '--label', 'bench'], 'sk-bench-upstream-key')
    cli(['policy', 'set', 'cached', '--file', '-'], JSON.stringify({ cache: { ttl: '1h' } }))
    cli(['models', 'add', 'bench-model', '--target', 'up/bench-upstream'])
    cli(['models', 'add', 'bench-cached', '--target', 'up/bench-upstream', '--policy', 'cached'])
    const key = (JSON.parse(cli(['clients', 'add', 'bench', '--json'])) as { key: string }).key
    const proxy = await start([path.join(root, 'bin/proxy.js'), 'serve', '--port', '0'], /listening on http:\/\/127\.0\.0\.1:(\d+)/, 'stderr', env)
    const proxyUrl = `http://127.0.0.1:${proxy}`
    const auth = { authorization: `Bearer ${key}` }

    // the cached answer is in place, and a hit reaches no upstream
    const first = await fetch(`${proxyUrl}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: body('bench-cached') })
    await first.text()
    const before = await upstreamCount(upstreamUrl)
    const hit = await fetch(`${proxyUrl}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: body('bench-cached') })
    await hit.text()
    if (hit.headers.get('x-proxy-cache') !== 'hit' || (await upstreamCount(upstreamUrl)) !== before) throw new Error('the second request was not a cache hit')

    const passthroughPhase = await load(`http://127.0.0.1:${passthrough}`, {}, body('bench-model'))
    const upstreamPhase = await load(proxyUrl, auth, body('bench-model'))
    const beforeHits = await upstreamCount(upstreamUrl)
    const hitsPhase = await load(proxyUrl, auth, body('bench-cached'))
    const upstreamCalls = (await upstreamCount(upstreamUrl)) - beforeHits
    const phases = { passthrough: passthroughPhase, proxyUpstream: upstreamPhase, proxyCacheHits: hitsPhase }
    console.log(
      JSON.stringify(
        {
          when: new Date().toISOString(),
          node: process.version,
          seconds: SECONDS,
          connections: CONNECTIONS,
          phases,
          upstreamCallsDuringHits: upstreamCalls,
          hitsVsPassthrough: +(phases.proxyCacheHits.rps / phases.passthrough.rps).toFixed(2),
          hitsVsProxyUpstream: +(phases.proxyCacheHits.rps / phases.proxyUpstream.rps).toFixed(2),
        },
        null,
        2,
      ),
    )
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    rmSync(work, { recursive: true, force: true })
  }
}

/** A closed loop: CONNECTIONS requests in flight for SECONDS; requests per second and latency percentiles. */
async function load(url: string, headers: Record<string, string>, payload: string) {
  const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 })
  const send = async () => {
    const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { ...headers, 'content-type': 'application/json' }, body: payload })
    await res.body.dump()
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`)
  }
  for (let i = 0; i < 200; i++) await send() // warm-up
  const latencies: number[] = []
  const until = performance.now() + SECONDS * 1000
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const t = performance.now()
        await send()
        latencies.push(performance.now() - t)
      }
    }),
  )
  await pool.close()
  latencies.sort((a, b) => a - b)
  const at = (q: number) => +latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(3)
  return { requests: latencies.length, rps: Math.round(latencies.length / SECONDS), p50ms: at(0.5), p99ms: at(0.99) }
}

async function upstreamCount(upstreamUrl: string): Promise<number> {
  return ((await (await fetch(`${upstreamUrl}/__count`)).json()) as { count: number }).count
}

/** Starts a node child and resolves with the port it prints. */
function start(args: string[], listening: RegExp, stream: 'stdout' | 'stderr', env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let text = ''
    child[stream]!.on('data', (d) => {
      text += d
      const m = listening.exec(text)
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${text}`)))
    setTimeout(() => reject(new Error(`${args[0]} did not start: ${text}`)), 15_000).unref()
  })
}

main().catch((err) => {
  console.error(err)
  for (const c of children) c.kill('SIGTERM')
  process.exitCode = 1
})
