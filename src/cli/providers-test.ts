/**
 * `proxy providers test NAME`: checks every active key of a provider straight against the upstream, from
 * the CLI process (the server need not run), with the cheapest request the provider offers: listing its
 * models where the adapter can, else a 1-token chat to `--model` or to the first model a route sends to
 * this provider. Reports each key's outcome and latency, never its secret; exits 1 when any key fails.
 */
import { Command } from 'commander'
import { isProxyError } from '../core/errors.js'
import type { CallContext, ProviderAdapter } from '../providers/types.js'
import type { ConfigSnapshot, ProviderConfig } from '../store/snapshot.js'
import { CliError, dataDirOption, err, jsonOption, out, parseIntOption, printJson, table, withStore, type CliDeps } from './context.js'

/** Types that answer without a key when the provider has none (as the gateway treats them). */

export type Probe = { kind: 'models' } | { kind: 'chat'; model: string }

export interface KeyResult {
  key: string | null
  ok: boolean
  latencyMs: number
  /** what the upstream answered: a model count, or the model that replied */
  detail?: string
  /** on failure: the proxy's status and code for it, the upstream's own status when known, and why */
  status?: number
  code?: string | null
  upstreamStatus?: number
  message?: string
}

export interface TestReport {
  provider: string
  type: string
  probe: Probe
  results: KeyResult[]
}

export function providersTestCommand(deps: CliDeps): Command {
  return dataDirOption(jsonOption(new Command('test')))
    .argument('<name>', 'provider name')
    .description("check each active key of a provider with the cheapest request it takes (never prints a secret)")
    .option('--model <upstream>', 'send a 1-token chat to this upstream model instead of listing models')
    .option('--timeout <ms>', 'give up on a key after this long', parseIntOption('--timeout'), 15_000)
    .addHelpText('after', '\nExamples:\n  proxy providers test openai\n  proxy providers test azure --model my-gpt4o-deployment\n  proxy providers test ollama --json')
    .action(async (name: string, opts: { model?: string; timeout: number; json?: boolean; dataDir?: string }) => {
      const { loadSnapshot } = await import('../store/snapshot.js')
      const snapshot = await withStore(deps, opts, (store) => loadSnapshot(store))
      const report = await testProvider(snapshot, name, { model: opts.model, timeoutMs: opts.timeout })
      for (const problem of snapshot.problems.filter((p) => p.includes(`provider '${name}'`))) err(deps, `warning: ${problem}`)
      if (opts.json) printJson(deps, report)
      else printReport(deps, report)
      const failed = report.results.filter((r) => !r.ok).length
      if (failed > 0) throw new CliError(`${failed} of ${report.results.length} key(s) of provider '${name}' failed.`, 1)
    })
}

export async function testProvider(snapshot: ConfigSnapshot, name: string, opts: { model?: string; timeoutMs: number }): Promise<TestReport> {
  // undici and the adapters load only here: `proxy providers add` and the rest do not need them.
  const [{ Agent }, { createAdapter, isKeyless }] = await Promise.all([import('../server/undici-agent.js'), import('../providers/index.js')])
  const provider = snapshot.providers.get(name)
  if (!provider) throw new CliError(`No provider named '${name}'. List them with 'proxy providers ls'.`)
  const keys: Array<{ label: string | null; secret: string | null }> = provider.keys.filter((k) => k.state === 'active').map((k) => ({ label: k.label, secret: k.secret }))
  if (keys.length === 0) {
    if (!isKeyless(provider.type)) throw new CliError(`Provider '${name}' has no active key to test. Add one with 'proxy keys add ${name}'.`)
    keys.push({ label: null, secret: null })
  }
  const agent = new Agent({ connect: { timeout: Math.min(opts.timeoutMs, 10_000) } })
  try {
    const adapter = createAdapter({ name: provider.name, type: provider.type, baseUrl: provider.baseUrl, settings: provider.settings }, { dispatcher: agent })
    const probe = chooseProbe(adapter, provider, snapshot, opts.model)
    const secrets = keys.map((k) => k.secret).filter((s): s is string => !!s)
    const results: KeyResult[] = []
    // One key at a time: a provider's rate limit is often per account, and the latencies stay comparable.
    for (const key of keys) results.push(await probeKey(adapter, probe, key, opts.timeoutMs, secrets))
    return { provider: provider.name, type: provider.type, probe, results }
  } finally {
    await agent.close()
  }
}

function chooseProbe(adapter: ProviderAdapter, provider: ProviderConfig, snapshot: ConfigSnapshot, model: string | undefined): Probe {
  if (model) return { kind: 'chat', model }
  if (adapter.listModels) return { kind: 'models' }
  const routed = [...snapshot.routes.values()]
    .sort((a, b) => a.model.localeCompare(b.model))
    .flatMap((r) => r.targets)
    .find((t) => t.provider.name === provider.name)
  if (routed) return { kind: 'chat', model: routed.upstreamModel }
  throw new CliError(`Provider '${provider.name}' cannot list models and no route sends to it; pass --model UPSTREAM_MODEL.`)
}

async function probeKey(adapter: ProviderAdapter, probe: Probe, key: { label: string | null; secret: string | null }, timeoutMs: number, secrets: string[]): Promise<KeyResult> {
  const ctx: CallContext = {
    apiKey: key.secret,
    upstreamModel: probe.kind === 'chat' ? probe.model : '',
    signal: AbortSignal.timeout(timeoutMs),
    requestId: `providers-test-${Date.now()}`,
    timeouts: { firstByteMs: timeoutMs },
  }
  const started = performance.now()
  const latency = () => Math.round(performance.now() - started)
  try {
    if (probe.kind === 'models') {
      const models = await adapter.listModels!(ctx)
      return { key: key.label, ok: true, latencyMs: latency(), detail: `${models.length} model${models.length === 1 ? '' : 's'}` }
    }
    const res = await adapter.chat({ model: probe.model, messages: [{ role: 'user', content: 'ping' }], max_tokens: 1 }, ctx)
    return { key: key.label, ok: true, latencyMs: latency(), detail: `answered as ${res.model || probe.model}` }
  } catch (e) {
    const ms = latency()
    const upstreamStatus = (e as { upstreamStatus?: unknown }).upstreamStatus
    const message = scrub(e instanceof Error ? e.message : String(e), secrets)
    return {
      key: key.label,
      ok: false,
      latencyMs: ms,
      ...(isProxyError(e) ? { status: e.status, code: e.code } : {}),
      ...(typeof upstreamStatus === 'number' ? { upstreamStatus } : {}),
      message,
    }
  }
}

/** Upstream messages sometimes echo the key they rejected; the shared mapper masks key-like text, and this the exact secrets. */
function scrub(text: string, secrets: string[]): string {
  return secrets.reduce((t, s) => t.split(s).join('[redacted]'), text)
}

function printReport(deps: CliDeps, report: TestReport): void {
  const how = report.probe.kind === 'models' ? 'listing models' : `a 1-token chat to '${report.probe.model}'`
  out(deps, `Provider '${report.provider}' (${report.type}), tested by ${how}:`)
  out(
    deps,
    table(
      report.results.map((r) => ({
        key: r.key ?? '(no key)',
        result: r.ok ? 'ok' : `error ${r.upstreamStatus ?? r.status ?? ''}`.trim(),
        latency: `${r.latencyMs} ms`,
        detail: r.ok ? r.detail : r.message,
      })),
      ['key', 'result', 'latency', 'detail'],
    ),
  )
}
