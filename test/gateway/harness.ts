/**
 * Shared set-up for the resilience suites: providers backed by fault-injecting fake upstreams, keys
 * with known secrets, policies, clients, and small HTTP helpers that keep the response headers.
 */
import { Agent } from 'undici'
import type { ChatRequest } from '../../src/core/openai-schema.js'
import { Gateway, type AttemptRecord, type GatewayDeps } from '../../src/gateway/gateway.js'
import type { Clock } from '../../src/gateway/clock.js'
import type { CircuitChange, KeyHealthChange } from '../../src/gateway/events.js'
import { openStore, type Store } from '../../src/store/db.js'
import { loadSnapshot, type ClientConfig, type ConfigSnapshot } from '../../src/store/snapshot.js'
import type { RunningProxy } from '../../src/server/start.js'
import { startFaultUpstream, type FaultUpstream } from '../fakes/fault-upstream.js'
import { cli, keyFrom, startTestProxy, tempDataDir, testEnv, type CliResult } from '../helpers/proxy.js'

export const secret = (provider: string, label: string) => `sk-${provider}-${label}`

export interface KeySpec {
  label: string
  priority?: number
  weight?: number
}

export async function must(p: Promise<CliResult>): Promise<CliResult> {
  const r = await p
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${r.stderr}`)
  return r
}

/** An openai-compatible provider pointing at a fake upstream, with keys whose secrets are `sk-<provider>-<label>`. */
export async function addProvider(dir: string, name: string, upstream: FaultUpstream, keys: Array<string | KeySpec>): Promise<void> {
  await must(cli(dir, ['providers', 'add', name, '--type', 'openai-compatible', '--base-url', upstream.url]))
  for (const k of keys) {
    const spec = typeof k === 'string' ? { label: k } : k
    const args = ['keys', 'add', name, '--label', spec.label]
    if (spec.priority !== undefined) args.push('--priority', String(spec.priority))
    if (spec.weight !== undefined) args.push('--weight', String(spec.weight))
    await must(cli(dir, args, { stdin: secret(name, spec.label) }))
  }
}

export async function setPolicy(dir: string, name: string, doc: unknown): Promise<void> {
  await must(cli(dir, ['policy', 'set', name, '--file', '-'], { stdin: JSON.stringify(doc) }))
}

export async function addRoute(dir: string, model: string, targets: string[], policy?: string): Promise<void> {
  const args = ['models', 'add', model, ...targets.flatMap((t) => ['--target', t])]
  if (policy) args.push('--policy', policy)
  await must(cli(dir, args))
}

export async function addClient(dir: string, name: string, extra: string[] = []): Promise<string> {
  return keyFrom((await must(cli(dir, ['clients', 'add', name, ...extra]))).stdout)
}

export interface AlphaProxy {
  dir: string
  upstream: FaultUpstream
  proxy: RunningProxy
  /** client `app`'s key */
  key: string
  close(): Promise<void>
}

/** Provider `alpha` on a fault upstream with `keys`, model `m` routed to it, client `app` (with `clientArgs`), and a running proxy. */
export async function startAlphaProxy(keys: Array<string | KeySpec>, clientArgs: string[] = []): Promise<AlphaProxy> {
  const data = tempDataDir()
  const upstream = await startFaultUpstream('alpha')
  await addProvider(data.dir, 'alpha', upstream, keys)
  await addRoute(data.dir, 'm', ['alpha/up'])
  const key = await addClient(data.dir, 'app', clientArgs)
  const proxy = await startTestProxy(data.dir)
  return {
    dir: data.dir,
    upstream,
    proxy,
    key,
    async close() {
      await proxy.close()
      await upstream.close()
      data.cleanup()
    },
  }
}

export interface ChatResult {
  status: number
  headers: Headers
  text: string
  /** the answer's text (joined deltas for a stream) */
  content: string
  /** a stream's error event, if one arrived */
  streamError: { message: string; code: string | null } | null
  body: any
  ms: number
}

export async function chat(url: string, key: string, model: string, opts: { stream?: boolean; signal?: AbortSignal } = {}): Promise<ChatResult> {
  const started = performance.now()
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...(opts.stream ? { stream: true } : {}) }),
    signal: opts.signal,
  })
  const text = await res.text()
  const ms = performance.now() - started
  let content = ''
  let streamError: ChatResult['streamError'] = null
  let body: any = null
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue
      const event = JSON.parse(line.slice(6))
      if (event.error) streamError = { message: event.error.message, code: event.error.code }
      else content += event.choices?.[0]?.delta?.content ?? ''
    }
  } else {
    body = text ? JSON.parse(text) : null
    content = body?.choices?.[0]?.message?.content ?? ''
  }
  return { status: res.status, headers: res.headers, text, content, streamError, body, ms }
}

/** A clock whose time moves only when told (or when the gateway sleeps); sleeps are recorded, not waited. */
export function manualClock(start = Date.now()) {
  let t = start
  const sleeps: number[] = []
  const clock: Clock = {
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms)
      t += ms
    },
  }
  return { clock, sleeps, advance: (ms: number) => void (t += ms), now: () => t }
}

/** A client as the gateway sees it; built loosely so it survives fields other features add to ClientConfig. */
export const testClient = (policy: string | null = null): ClientConfig =>
  ({ id: 1, name: 'test', role: 'user', models: null, expiresAt: null, revoked: false, limits: [], rpm: null, tpm: null, dailyTokens: null, monthlyTokens: null, policy }) as unknown as ClientConfig

/** A Gateway built directly on a store's snapshot, with an injected clock and RNG, and recorded events. */
export async function directGateway(dir: string, deps: Partial<Pick<GatewayDeps, 'clock' | 'random' | 'healthSink' | 'shared' | 'sharedPollMs'>> = {}) {
  const store: Store = await openStore({ dataDir: dir, env: testEnv(dir), keychain: null })
  let snapshot: ConfigSnapshot = await loadSnapshot(store)
  const dispatcher = new Agent()
  const circuits: CircuitChange[] = []
  const keys: KeyHealthChange[] = []
  const gateway = new Gateway({
    config: () => snapshot,
    dispatcher,
    events: { circuit: (c) => circuits.push(c), keyHealth: (k) => keys.push(k) },
    ...deps,
  })
  let n = 0
  const call = async (model: string, opts: { stream?: boolean; client?: ClientConfig } = {}) => {
    const attempts: AttemptRecord[] = []
    const req = { model, messages: [{ role: 'user', content: 'hi' }] } as ChatRequest
    const caller = { client: opts.client ?? testClient(), requestId: `req-${++n}`, signal: new AbortController().signal, attempts }
    try {
      if (opts.stream) {
        const served = await gateway.chatStream({ ...req, stream: true }, caller)
        let content = ''
        for await (const chunk of served.value) content += chunk.choices[0]?.delta.content ?? ''
        return { ok: true as const, served, content, attempts }
      }
      const served = await gateway.chat(req, caller)
      return { ok: true as const, served, content: served.value.choices[0]?.message.content ?? '', attempts }
    } catch (error) {
      return { ok: false as const, error: error as Error & { status: number; code: string | null; headers: Record<string, string> }, attempts }
    }
  }
  return {
    gateway,
    store,
    events: { circuits, keys },
    call,
    reload: async () => {
      snapshot = await loadSnapshot(store)
    },
    close: async () => {
      gateway.close()
      await dispatcher.close()
      await store.close()
    },
  }
}

/** A real logger writing JSON lines into an array, to check what the server logs. */
export async function captureLogger() {
  const { createLogger } = await import('../../src/telemetry/logger.js')
  const lines: Array<Record<string, any>> = []
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } })
  return { logger, lines }
}
