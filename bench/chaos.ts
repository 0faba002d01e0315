/**
 * `npm run bench:chaos` (or `npx tsx bench/chaos.ts [--requests N] [--concurrency C] [--json]`):
 * a bounded chaos run of the resilience features. Not a test: it prints figures.
 *
 * - two fake OpenAI providers with three keys each: on `alpha` one key is revoked (401 on every call);
 *   `beta` fails 30% of requests with a 5xx and hangs 5% of them (no headers, ever);
 * - the proxy runs as its own process, with a policy whose budget and timeouts are a few seconds;
 * - N requests (default 2,000; a fifth of them streamed) go through it at bounded concurrency, half to a
 *   model routed alpha -> beta and half to beta -> alpha, then the same N go directly to a healthy fake
 *   and through the proxy to healthy fakes, to see what latency the proxy and the chaos add;
 * - everything is on 127.0.0.1, and the whole run has a hard time cap.
 *
 * Targets: >= 99.9% client-visible success, and no request past the policy's budget.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { setMaxListeners } from 'node:events'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { startFaultUpstream, type FaultUpstream } from '../test/fakes/fault-upstream.js'

const root = path.resolve(import.meta.dirname, '..')
const MASTER_KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='

interface Sample {
  ok: boolean
  ms: number
  status: number
  stream: boolean
  attempts: number
  fallback: string | null
  error?: string
}

async function chaos(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      requests: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '32' },
      'cap-seconds': { type: 'string', default: '240' },
      json: { type: 'boolean', default: false },
    },
  })
  const N = Math.max(1, Math.min(100_000, Number(flags.requests)))
  const CONCURRENCY = Math.max(1, Math.min(256, Number(flags.concurrency)))
  const CAP_MS = Number(flags['cap-seconds']) * 1000
  const hardStop = AbortSignal.timeout(CAP_MS)
  setMaxListeners(0, hardStop)
  const policy = {
    keys: { strategy: 'round-robin' },
    retry: { max_attempts: 5, backoff_ms: { base: 50, max: 400 }, retry_after_cap_ms: 1000 },
    timeouts_ms: { connect: 500, first_byte: 1000, total: 3000, budget: 4000 },
    // Strict enough to trip now and then on a provider failing a third of the time, short enough that it
    // half-opens several times during the run, so retries and fallbacks are exercised, not just skipping.
    circuit: { consecutive_failures: 6, failure_rate: 0.6, min_requests: 20, window_s: 10, open_s: 2, half_open_probes: 1 },
  }
  const log = (...parts: unknown[]) => console.error('[chaos]', ...parts)

  const dataDir = mkdtempSync(path.join(tmpdir(), 'proxy-chaos-'))
  const upstreams: FaultUpstream[] = []
  let child: ChildProcess | null = null
  const stopAll = async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child!.once('exit', r))
    }
    await Promise.all(upstreams.map((u) => u.close()))
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)))

  try {
    const alpha = await startFaultUpstream('alpha')
    const beta = await startFaultUpstream('beta')
    const healthyA = await startFaultUpstream('healthy-a')
    const healthyB = await startFaultUpstream('healthy-b')
    const direct = await startFaultUpstream('direct')
    upstreams.push(alpha, beta, healthyA, healthyB, direct)
    // A little upstream latency, as any real model has; the same everywhere.
    const think = { delayMs: 15 }
    alpha.fail({ key: 'sk-alpha-a3', status: 401 })
    alpha.fail(think)
    beta.fail({ rate: 0.05, hang: 'before_headers' })
    beta.fail({ rate: 0.3 / 0.95, status: 503, ...think }) // failing takes as long as answering
    beta.fail(think)
    for (const u of [healthyA, healthyB, direct]) u.fail(think)

    log(`store in ${dataDir}`)
    const clientKey = await seedStore(dataDir, { alpha, beta, healthyA, healthyB }, policy)
    const port = await freePort()
    const lines: Array<Record<string, unknown>> = []
    child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'chaos.ts'), '--as-proxy', 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'info'], {
      cwd: root,
      env: { ...process.env, PROXY_DATA_DIR: dataDir, PROXY_MASTER_KEY: MASTER_KEY, PROXY_KEYCHAIN: 'off', PROXY_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        // not a log line
      }
    })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const base = `http://127.0.0.1:${port}`
    await waitReady(base, child, () => stderr)
    log(`proxy (pid ${child.pid}) on ${base}; ${N} requests per phase, concurrency ${CONCURRENCY}`)

    const dispatcher = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 })
    const phase = (name: string, url: string, auth: string, models: string[], n = N, concurrency = CONCURRENCY) =>
      runPhase({ name, url, auth, models, n, concurrency, dispatcher, stop: hardStop, log })

    // Warm the connection pools so the first requests of each phase do not pay for TCP set-up.
    await phase('warm-up', `${base}/v1/chat/completions`, clientKey, ['healthy'])
    const directRun = await phase('direct (healthy fake)', `${direct.url}/chat/completions`, 'sk-direct', ['direct-model'])
    const healthyRun = await phase('proxy -> healthy fakes', `${base}/v1/chat/completions`, clientKey, ['healthy'])
    const chaosRun = await phase('proxy -> chaos', `${base}/v1/chat/completions`, clientKey, ['chaos-ab', 'chaos-ba'])
    // One at a time: the proxy's own cost per request, without queueing behind other requests.
    const soloN = Math.min(300, N)
    const directSolo = await phase('direct, one at a time', `${direct.url}/chat/completions`, 'sk-direct', ['direct-model'], soloN, 1)
    const proxySolo = await phase('proxy -> healthy, one at a time', `${base}/v1/chat/completions`, clientKey, ['healthy'], soloN, 1)
    await dispatcher.close()

    const events = lines.filter((l) => l.event === 'circuit' || l.event === 'key_health')
    const report = {
      requests: N,
      concurrency: CONCURRENCY,
      policy,
      faults: {
        'alpha/a3': '401 on every call (revoked)',
        beta: '5% hang before headers, 30% 503 (of all requests)',
        injected: {
          alpha_401: alpha.requests.filter((r) => r.outcome === 'status 401').length,
          beta_503: beta.requests.filter((r) => r.outcome === 'status 503').length,
          beta_hang: beta.requests.filter((r) => r.outcome.startsWith('hang')).length,
          upstream_calls: { alpha: alpha.count(), beta: beta.count() },
        },
      },
      direct: summary(directRun),
      proxy_healthy: summary(healthyRun),
      chaos: summary(chaosRun),
      added_latency_ms: {
        proxy_overhead: { p50: round(pct(healthyRun, 50) - pct(directRun, 50)), p99: round(pct(healthyRun, 99) - pct(directRun, 99)) },
        proxy_overhead_unloaded: { p50: round(pct(proxySolo, 50) - pct(directSolo, 50)), p99: round(pct(proxySolo, 99) - pct(directSolo, 99)) },
        chaos_vs_direct: { p50: round(pct(chaosRun, 50) - pct(directRun, 50)), p99: round(pct(chaosRun, 99) - pct(directRun, 99)) },
      },
      budget_ms: policy.timeouts_ms.budget,
      max_request_ms: round(Math.max(...chaosRun.map((s) => s.ms))),
      over_budget: chaosRun.filter((s) => s.ms > policy.timeouts_ms.budget).length,
      resilience_events: {
        circuit_opened: events.filter((e) => e.event === 'circuit' && e.to === 'open').length,
        circuit_closed: events.filter((e) => e.event === 'circuit' && e.to === 'closed').length,
        keys_invalidated: events.filter((e) => e.event === 'key_health' && e.to === 'invalid').map((e) => `${String(e.provider)}/${String(e.key)}`),
      },
      failures: chaosRun.filter((s) => !s.ok).slice(0, 10),
      event_log: events.map((e) => `${String(e.time ?? '')} ${String(e.event)} ${String(e.provider)}${e.key ? '/' + String(e.key) : ''} ${String(e.from)}>${String(e.to)} ${String(e.reason)}`),
    }
    if (flags.json) console.log(JSON.stringify(report, null, 2))
    else printReport(report, chaosRun)
    const success = chaosRun.filter((s) => s.ok).length / chaosRun.length
    process.exitCode = success >= 0.999 && report.over_budget === 0 ? 0 : 1
  } finally {
    await stopAll()
  }
}

async function seedStore(dataDir: string, u: Record<'alpha' | 'beta' | 'healthyA' | 'healthyB', FaultUpstream>, policy: unknown): Promise<string> {
  const { openStore } = await import('../src/store/db.js')
  const { addProvider } = await import('../src/store/repos/providers.js')
  const { addKey } = await import('../src/store/repos/provider-keys.js')
  const { addRoute } = await import('../src/store/repos/routes.js')
  const { addClient } = await import('../src/store/repos/clients.js')
  const { setPolicy } = await import('../src/store/repos/policies.js')
  const store = await openStore({ dataDir, env: { PROXY_MASTER_KEY: MASTER_KEY, PROXY_KEYCHAIN: 'off' }, keychain: null })
  try {
    const providers: Array<[string, FaultUpstream, string[]]> = [
      ['alpha', u.alpha, ['a1', 'a2', 'a3']],
      ['beta', u.beta, ['b1', 'b2', 'b3']],
      ['healthy-a', u.healthyA, ['h1', 'h2', 'h3']],
      ['healthy-b', u.healthyB, ['h1', 'h2', 'h3']],
    ]
    for (const [name, upstream, labels] of providers) {
      await addProvider(store.db, { name, type: 'openai-compatible', baseUrl: upstream.url })
      for (const label of labels) await addKey(store, { provider: name, label, secret: `sk-${name}-${label}` })
    }
    await addRoute(store.db, 'chaos-ab', [{ provider: 'alpha', upstreamModel: 'up-a' }, { provider: 'beta', upstreamModel: 'up-b' }])
    await addRoute(store.db, 'chaos-ba', [{ provider: 'beta', upstreamModel: 'up-b' }, { provider: 'alpha', upstreamModel: 'up-a' }])
    await addRoute(store.db, 'healthy', [{ provider: 'healthy-a', upstreamModel: 'up' }, { provider: 'healthy-b', upstreamModel: 'up' }])
    await setPolicy(store.db, 'global', policy)
    return (await addClient(store.db, { name: 'chaos' })).key
  } finally {
    await store.close()
  }
}

async function runPhase(o: {
  name: string
  url: string
  auth: string
  models: string[]
  n: number
  concurrency: number
  dispatcher: Agent
  stop: AbortSignal
  log: (...p: unknown[]) => void
}): Promise<Sample[]> {
  const samples: Sample[] = []
  let next = 0
  const started = performance.now()
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= o.n || o.stop.aborted) return
      samples.push(await one(o.url, o.auth, o.models[i % o.models.length]!, i % 5 === 4, o.dispatcher, o.stop))
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  const ok = samples.filter((s) => s.ok).length
  o.log(`${o.name}: ${ok}/${samples.length} ok in ${((performance.now() - started) / 1000).toFixed(1)} s, p50 ${round(pct(samples, 50))} ms, p99 ${round(pct(samples, 99))} ms`)
  return samples
}

async function one(url: string, auth: string, model: string, stream: boolean, dispatcher: Agent, stop: AbortSignal): Promise<Sample> {
  const t0 = performance.now()
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      signal: stop,
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'chaos' }], ...(stream ? { stream: true } : {}) }),
    })
    const text = await res.body.text()
    const ms = performance.now() - t0
    const attempts = Number(res.headers['x-proxy-attempts'] ?? 1)
    const fallback = (res.headers['x-proxy-fallback'] as string | undefined) ?? null
    if (res.statusCode !== 200) return { ok: false, ms, status: res.statusCode, stream, attempts, fallback, error: text.slice(0, 200) }
    if (stream) {
      const complete = text.includes('data: [DONE]') && !text.includes('"error"')
      return { ok: complete, ms, status: 200, stream, attempts, fallback, ...(complete ? {} : { error: 'stream ended with an error event' }) }
    }
    const body = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }> }
    const ok = typeof body.choices?.[0]?.message?.content === 'string'
    return { ok, ms, status: 200, stream, attempts, fallback }
  } catch (err) {
    return { ok: false, ms: performance.now() - t0, status: 0, stream, attempts: 0, fallback: null, error: (err as Error).message }
  }
}

function summary(samples: Sample[]) {
  const ok = samples.filter((s) => s.ok).length
  const byFallback: Record<string, number> = {}
  for (const s of samples) if (s.fallback) byFallback[s.fallback] = (byFallback[s.fallback] ?? 0) + 1
  return {
    sent: samples.length,
    ok,
    success_rate: samples.length ? ok / samples.length : 0,
    p50_ms: round(pct(samples, 50)),
    p99_ms: round(pct(samples, 99)),
    max_ms: round(Math.max(0, ...samples.map((s) => s.ms))),
    mean_attempts: Math.round((samples.reduce((n, s) => n + s.attempts, 0) / Math.max(1, samples.length)) * 1000) / 1000,
    retried: samples.filter((s) => s.attempts > 1).length,
    max_attempts: Math.max(0, ...samples.map((s) => s.attempts)),
    served_by_fallback: byFallback,
  }
}

function printReport(r: ReturnType<typeof JSON.parse>, chaosRun: Sample[]): void {
  const line = (k: string, v: string) => console.log(`  ${k.padEnd(34)} ${v}`)
  const pctText = (x: number) => `${(x * 100).toFixed(2)} %`
  console.log('\nChaos run (127.0.0.1, proxy in its own process)')
  line('requests per phase / concurrency', `${r.requests} / ${r.concurrency}`)
  line('faults', `alpha/a3 revoked (401); beta 5% hang, 30% 503`)
  line('injected (chaos phase)', `alpha 401 x${r.faults.injected.alpha_401}, beta 503 x${r.faults.injected.beta_503}, beta hang x${r.faults.injected.beta_hang}`)
  line('policy', `max_attempts ${r.policy.retry.max_attempts}, first_byte ${r.policy.timeouts_ms.first_byte} ms, budget ${r.policy.timeouts_ms.budget} ms`)
  console.log('')
  line('success (chaos)', `${pctText(r.chaos.success_rate)} (${r.chaos.ok}/${r.chaos.sent})  target >= 99.9 %`)
  line('success (proxy, healthy)', `${pctText(r.proxy_healthy.success_rate)}`)
  line('latency direct p50 / p99', `${r.direct.p50_ms} / ${r.direct.p99_ms} ms`)
  line('latency proxy healthy p50 / p99', `${r.proxy_healthy.p50_ms} / ${r.proxy_healthy.p99_ms} ms`)
  line('latency proxy chaos p50 / p99', `${r.chaos.p50_ms} / ${r.chaos.p99_ms} ms`)
  line('added by proxy p50 / p99', `${r.added_latency_ms.proxy_overhead.p50} / ${r.added_latency_ms.proxy_overhead.p99} ms (one at a time: ${r.added_latency_ms.proxy_overhead_unloaded.p50} / ${r.added_latency_ms.proxy_overhead_unloaded.p99} ms)`)
  line('added by proxy+chaos p50 / p99', `${r.added_latency_ms.chaos_vs_direct.p50} / ${r.added_latency_ms.chaos_vs_direct.p99} ms`)
  line('max request vs budget', `${r.max_request_ms} ms vs ${r.budget_ms} ms (${r.over_budget} over)`)
  line('upstream attempts (chaos)', `mean ${r.chaos.mean_attempts}, max ${r.chaos.max_attempts}; ${r.chaos.retried} requests needed more than one`)
  line('served by a fallback (chaos)', JSON.stringify(r.chaos.served_by_fallback))
  line('circuits opened / closed', `${r.resilience_events.circuit_opened} / ${r.resilience_events.circuit_closed}`)
  line('keys invalidated', r.resilience_events.keys_invalidated.join(', ') || '-')
  const failed = chaosRun.filter((s) => !s.ok)
  if (failed.length) {
    console.log('\n  failures (first 10):')
    for (const f of failed.slice(0, 10)) console.log(`    ${f.status} ${f.stream ? 'stream ' : ''}${Math.round(f.ms)} ms ${f.error ?? ''}`)
  }
  console.log('')
}

function round(x: number): number {
  return Math.round(x * 10) / 10
}

function pct(samples: Sample[], p: number): number {
  if (samples.length === 0) return 0
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

async function waitReady(base: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`the proxy exited (${child.exitCode}): ${stderr()}`)
    try {
      const res = await request(`${base}/readyz`)
      await res.body.dump()
      if (res.statusCode === 200) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`the proxy did not become ready: ${stderr()}`)
}

if (process.argv.includes('--as-proxy')) {
  // The child: the real CLI, `proxy serve …`, from source.
  const { main } = await import('../src/cli/main.js')
  const at = process.argv.indexOf('--as-proxy')
  await main([process.argv[0]!, 'proxy', ...process.argv.slice(at + 1)])
} else {
  await chaos()
}
