import { Command } from 'commander'
import { parseDuration } from '../core/duration.js'
import type { AuditRow } from '../store/schema.js'
import { CliError, dataDirOption, jsonOption, out, parseIntOption, printJson, table, withStore, type CliDeps } from './context.js'

const repos = () => import('../store/repos/audit.js')

export function auditCommand(deps: CliDeps): Command {
  const cmd = new Command('audit').description('the audit trail: one row per request (bodies only with content capture on)')

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list recent requests, newest first')
    .option('--client <name>', 'only this client')
    .option('--model <model>', 'only this requested model')
    .option('--status <status>', 'an exact status (429), a class (5xx) or error (any 4xx/5xx)')
    .option('--since <when>', 'a duration back from now (15m, 1h, 7d) or an ISO date/time')
    .option('--limit <n>', 'at most this many rows (default 50)', parseIntOption('--limit'), 50)
    .addHelpText('after', '\nExamples:\n  proxy audit ls --since 1h\n  proxy audit ls --client my-app --status error --limit 20\n  proxy audit ls --model gpt-4o --since 2026-01-31 --json')
    .action(async (opts: { client?: string; model?: string; status?: string; since?: string; limit: number; json?: boolean; dataDir?: string }) => {
      if (opts.status && !/^(\d{3}|[1-5]xx|error)$/i.test(opts.status)) throw new CliError(`--status takes a status like 429, a class like 5xx, or 'error', not '${opts.status}'.`)
      const since = opts.since ? parseSince(opts.since) : undefined
      const { listAudit } = await repos()
      const rows = await withStore(deps, opts, (store) => listAudit(store.db, { client: opts.client, model: opts.model, status: opts.status, since, limit: opts.limit }))
      if (opts.json) return printJson(deps, rows.map(withoutBodies))
      if (rows.length === 0) return out(deps, 'No audited requests match.')
      out(
        deps,
        table(
          rows.map((r) => ({
            time: r.ts.replace('T', ' ').slice(0, 19),
            request: r.request_id,
            client: r.client,
            model: r.model,
            provider: r.provider,
            status: r.error_code ? `${r.status} ${r.error_code}` : r.status,
            ms: Math.round(r.latency_ms),
            tokens: r.total_tokens === null ? null : `${r.prompt_tokens}/${r.completion_tokens}`,
            attempts: r.fallback ? `${r.attempts} (${r.fallback})` : r.attempts,
          })),
          ['time', 'request', 'client', 'model', 'provider', 'status', 'ms', 'tokens', 'attempts'],
        ),
      )
    })

  dataDirOption(jsonOption(cmd.command('show <request-id>')))
    .description('everything recorded about one request, bodies included when they were captured')
    .action(async (requestId: string, opts: { json?: boolean; dataDir?: string }) => {
      const { getAudit } = await repos()
      const rows = await withStore(deps, opts, (store) => getAudit(store.db, requestId))
      if (opts.json) return printJson(deps, rows.length === 1 ? rows[0] : rows)
      out(deps, rows.map(describeRow).join('\n\n'))
    })

  dataDirOption(jsonOption(cmd.command('prune')))
    .description('delete audit rows older than a duration (usage totals are kept)')
    .requiredOption('--older-than <duration>', 'e.g. 30d, 12h, 2w')
    .addHelpText('after', '\nThe server can do this by itself: PROXY_AUDIT_RETENTION_DAYS=30 proxy serve prunes hourly.')
    .action(async (opts: { olderThan: string; json?: boolean; dataDir?: string }) => {
      const ms = parseDuration(opts.olderThan)
      if (ms === null) throw new CliError(`--older-than takes a duration like 30d, 12h or 2w, not '${opts.olderThan}'.`)
      const before = new Date(Date.now() - ms).toISOString()
      const { pruneAudit } = await repos()
      const deleted = await withStore(deps, opts, (store) => pruneAudit(store.db, before))
      if (opts.json) return printJson(deps, { deleted, before })
      out(deps, `Deleted ${deleted} audit row${deleted === 1 ? '' : 's'} from before ${before}.`)
    })

  dataDirOption(cmd.command('capture <client> <on|off>'))
    .description("keep (or stop keeping) a client's request and response bodies in the audit trail")
    .addHelpText('after', '\nPROXY_CAPTURE=on (or proxy serve --capture) captures every client. Bodies are capped by PROXY_CAPTURE_MAX_BYTES (default 32768).')
    .action(async (client: string, mode: string, opts: { dataDir?: string }) => {
      if (mode !== 'on' && mode !== 'off') throw new CliError(`Say on or off, not '${mode}'.`)
      const { setClientCapture } = await repos()
      await withStore(deps, opts, (store) => setClientCapture(store.db, client, mode === 'on'))
      out(deps, `Content capture for client '${client}' is ${mode}. Running servers apply it within about a second.`)
    })

  return cmd
}

/** `--since`: a duration back from now (15m, 1h, 7d) or an ISO date/time; returns an ISO timestamp. */
export function parseSince(text: string, now = Date.now()): string {
  const ms = parseDuration(text)
  if (ms !== null) return new Date(now - ms).toISOString()
  const date = Date.parse(text)
  if (Number.isNaN(date)) throw new CliError(`--since takes a duration like 1h or 7d, or a date like 2026-01-31, not '${text}'.`)
  return new Date(date).toISOString()
}

function withoutBodies(row: AuditRow): Omit<AuditRow, 'request_body' | 'response_body'> & { captured: boolean } {
  const { request_body, response_body, ...rest } = row
  return { ...rest, captured: request_body !== null || response_body !== null }
}

function describeRow(r: AuditRow): string {
  const fields: Array<[string, unknown]> = [
    ['request', r.request_id],
    ...(r.trace_id ? [['trace', r.trace_id] as [string, unknown]] : []),
    ['time', r.ts],
    ['call', `${r.method} ${r.path}${r.stream ? ' (stream)' : ''}`],
    ['client', r.client],
    ['ip', r.ip],
    ['model', r.model],
    ['served by', r.provider ? `${r.provider}/${r.upstream_model}${r.key_label ? ` with key '${r.key_label}'` : ''}` : null],
    ['status', r.status],
    ['latency', `${r.latency_ms} ms${r.upstream_ms !== null ? ` (upstream ${r.upstream_ms} ms)` : ''}${r.ttft_ms !== null ? `, first token after ${r.ttft_ms} ms` : ''}`],
    ['tokens', r.total_tokens === null ? null : `${r.prompt_tokens} in, ${r.completion_tokens} out`],
    ['cost', r.cost_usd === null ? null : formatUsd(r.cost_usd)],
    ['cache', r.cache === null ? null : r.cache === 'hit' && r.saved_usd !== null ? `hit (saved ${formatUsd(r.saved_usd)})` : r.cache],
    ['attempts', r.fallback ? `${r.attempts} (fallback: ${r.fallback})` : r.attempts],
    ['error', r.error_code || r.error_message ? `${r.error_code ?? ''}${r.error_message ? `: ${r.error_message}` : ''}` : null],
  ]
  const width = Math.max(...fields.map(([k]) => k.length))
  const lines = fields.map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined || v === '' ? '-' : String(v)}`)
  if (r.request_body !== null) lines.push('', 'request body:', r.request_body)
  if (r.response_body !== null) lines.push('', 'response body:', r.response_body)
  return lines.join('\n')
}

export function formatUsd(usd: number): string {
  if (usd === 0) return '$0'
  return usd >= 1 ? `$${usd.toFixed(2)}` : usd >= 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(6)}`
}
