import { Command, Option } from 'commander'
import { parseDuration } from '../core/duration.js'
import type { WindowLimit } from '../limits/types.js'
import { formatCount, parseLimitFlag, RATE_SYNTAX } from '../core/windows.js'
import type { ClientLimitsPatch, ClientSummary } from '../store/repos/clients.js'
import { budgetOptions, budgetPatch, formatBudget, hasBudgets, type BudgetFlags } from './budget-flags.js'
import { CliError, dataDirOption, err, jsonOption, out, printJson, repeatable, table, withStore, type CliDeps } from './context.js'

const repos = () => import('../store/repos/clients.js')

export function clientsCommand(deps: CliDeps): Command {
  const cmd = new Command('clients').description('the API keys this proxy issues to applications (stored hashed, shown once)')

  teamOptions(limitOptions(dataDirOption(jsonOption(cmd.command('add <name>')))))
    .description('create a client and print its key once')
    .addOption(new Option('--role <role>', 'admin clients may use the admin API').choices(['admin', 'user']).default('user'))
    .option('--models <list>', 'comma-separated models it may use (default: all)')
    .option('--expires <duration>', 'key lifetime such as 30d, 12h or 2w, or an ISO date')
    .option('--capture', "keep this client's request and response bodies in the audit trail (see 'proxy audit capture')")
    .option('--policy <name>', "a named policy for this client's requests; it wins over the route's and the global policy")
    .addHelpText('after', '\nExamples:\n  proxy clients add my-app\n  proxy clients add ci --models gpt-4o-mini --expires 30d\n  proxy clients add ops --role admin --json\n  proxy clients add batch --rpm 60 --tpm 100k --daily-tokens 1M --limit requests=10/1s\n  proxy clients add web --team search --daily-budget 5 --monthly-budget 100')
    .action(async (name: string, opts: LimitFlags & BudgetFlags & { team?: string; role: 'admin' | 'user'; models?: string; expires?: string; capture?: boolean; policy?: string; json?: boolean; dataDir?: string }) => {
      const models = opts.models ? opts.models.split(',').map((m) => m.trim()).filter(Boolean) : null
      const expiresAt = opts.expires ? parseExpiry(opts.expires) : null
      const limits = limitsPatch(opts, false)
      const budgets = budgetPatch(opts)
      const [{ addClient, setClientTeam }, { setClientCapture }, { getTeam }] = await Promise.all([repos(), import('../store/repos/audit.js'), import('../store/repos/teams.js')])
      const { client, key } = await withStore(deps, opts, (store) =>
        store.db.transaction().execute(async (tx) => {
          const added = await addClient(tx, { name, role: opts.role, models, expiresAt, policy: opts.policy ?? null, rpm: limits.rpm, tpm: limits.tpm, dailyTokens: limits.dailyTokens, monthlyTokens: limits.monthlyTokens, limits: limits.limits })
          if (opts.policy && !(await tx.selectFrom('policies').select('id').where('name', '=', opts.policy).executeTakeFirst())) {
            err(deps, `note: policy '${opts.policy}' does not exist yet; until 'proxy policy set ${opts.policy} --file …' stores it, the route's and the global policy apply.`)
          }
          if (opts.capture) await setClientCapture(tx, name, true)
          if (opts.team) await setClientTeam(tx, name, (await getTeam(tx, opts.team)).id)
          return added
        }),
      )
      if (opts.json) printJson(deps, { ...client, key })
      else out(deps, `Created client '${client.name}' (${client.role}). Its key, shown only this once:\n\n  ${key}\n`)
      // after the key is out: a refused budget must not cost the client its only sight of the key
      if (hasBudgets(budgets)) {
        try {
          await setBudgetsOf(deps, opts, 'client', name, budgets)
        } catch (e) {
          throw new CliError(`Client '${name}' was created, but without its budget: ${e instanceof Error ? e.message : String(e)}`)
        }
      }
    })

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list clients (keys are never shown, only their prefix)')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const [{ listClients }, { quotaUsageByClient }, { listTeams }, { listBudgets }] = await Promise.all([repos(), import('../store/repos/quotas.js'), import('../store/repos/teams.js'), import('../store/repos/budgets.js')])
      const [clients, usage, teams, budgetLines] = await withStore(deps, opts, (store) => Promise.all([listClients(store.db), quotaUsageByClient(store.db), listTeams(store.db), listBudgets(store.db)]))
      const teamName = new Map(teams.map((t) => [t.id, t.name]))
      const budgetOf = (id: number, period: 'day' | 'month') => budgetLines.find((b) => b.level === 'client' && b.subjectId === id && b.period === period)?.limitMicros ?? null
      const withUsage = clients.map((c) => ({ ...c, team: c.teamId === null ? null : (teamName.get(c.teamId) ?? null), dailyBudgetMicros: budgetOf(c.id, 'day'), monthlyBudgetMicros: budgetOf(c.id, 'month'), usage: usage.get(c.id) ?? { today: 0, month: 0 } }))
      if (opts.json) return printJson(deps, withUsage)
      if (clients.length === 0) return out(deps, "No clients yet. Create one with 'proxy clients add NAME'.")
      const rows = withUsage.map((c) => ({
        ...c,
        models: c.models ?? 'all',
        limits: describeLimits(c),
        today: againstQuota(c.usage.today, c.dailyTokens),
        month: againstQuota(c.usage.month, c.monthlyTokens),
        team: c.team ?? '-',
        budgets: c.dailyBudgetMicros || c.monthlyBudgetMicros ? `${formatBudget(c.dailyBudgetMicros)}/day ${formatBudget(c.monthlyBudgetMicros)}/month` : '-',
      }))
      out(deps, table(rows, ['name', 'role', 'keyPrefix', 'status', 'models', 'policy', 'limits', 'today', 'month', 'team', 'budgets', 'expiresAt', 'createdAt']))
    })

  teamOptions(limitOptions(dataDirOption(jsonOption(cmd.command('set <name>')))))
    .description("change a client's models, limits, quotas, team and budgets (running servers apply them within about a second)")
    .option('--clear-limits', 'remove every --limit window first (rpm, tpm and quotas stay unless set)')
    .option('--models <list>', "comma-separated models it may use, or 'all'")
    .addHelpText(
      'after',
      '\nNumbers take k and M (100k, 2M); "off" removes a limit.\n\nExamples:\n  proxy clients set my-app --models gpt-4o-mini,claude-sonnet-4-5\n  proxy clients set my-app --models all\n  proxy clients set my-app --rpm 120 --daily-tokens 500k\n  proxy clients set my-app --limit requests=10/1s --limit tokens=2M/1h\n  proxy clients set my-app --tpm off --clear-limits\n  proxy clients set my-app --team search --daily-budget 5 --monthly-budget off',
    )
    .action(async (name: string, opts: LimitFlags & BudgetFlags & { team?: string; models?: string; clearLimits?: boolean; json?: boolean; dataDir?: string }) => {
      const patch = limitsPatch(opts, true)
      const budgets = budgetPatch(opts)
      if (Object.keys(patch).length === 0 && !hasBudgets(budgets) && opts.team === undefined && opts.models === undefined) {
        throw new CliError('Nothing to change: give --models, --rpm, --tpm, --daily-tokens, --monthly-tokens, --limit, --clear-limits, --team or a budget.')
      }
      const models = opts.models === undefined ? undefined : /^(all|\*)$/i.test(opts.models.trim()) ? null : opts.models.split(',').map((m) => m.trim()).filter(Boolean)
      if (models !== undefined && models !== null && models.length === 0) throw new CliError("--models needs model names separated by commas, or 'all'.")
      const { setClientLimits, setClientTeam, setClientModels, getClient } = await repos()
      const { getTeam } = await import('../store/repos/teams.js')
      let client = await withStore(deps, opts, async (store) => {
        if (models !== undefined) await setClientModels(store.db, name, models)
        if (opts.team !== undefined) await setClientTeam(store.db, name, /^(off|none)$/i.test(opts.team) ? null : (await getTeam(store.db, opts.team)).id)
        if (Object.keys(patch).length > 0) return setClientLimits(store.db, name, patch)
        await getClient(store.db, name)
        return null
      })
      if (hasBudgets(budgets)) await setBudgetsOf(deps, opts, 'client', name, budgets)
      client ??= (await withStore(deps, opts, async (store) => (await repos()).listClients(store.db))).find((c) => c.name === name) ?? null
      if (opts.json) return printJson(deps, client)
      out(deps, `Client '${name}': ${models !== undefined ? `models ${models === null ? 'all' : models.join(', ')}, ` : ''}limits ${client ? describeLimits(client) : 'none'}${opts.team !== undefined ? `, team ${/^(off|none)$/i.test(opts.team) ? 'none' : `'${opts.team}'`}` : ''}${hasBudgets(budgets) ? `, budgets ${formatBudget(budgets.daily)}/day ${formatBudget(budgets.monthly)}/month` : ''}. Running servers apply it within about a second.`)
    })

  dataDirOption(cmd.command('revoke <name>'))
    .description('revoke a client key at once')
    .action(async (name: string, opts: { dataDir?: string }) => {
      const { revokeClient } = await repos()
      await withStore(deps, opts, (store) => revokeClient(store.db, name))
      out(deps, `Revoked client '${name}'. Its key stops working within about a second on running servers.`)
    })

  dataDirOption(jsonOption(cmd.command('rotate <name>')))
    .description('issue a new key for a client; the old one stops working')
    .action(async (name: string, opts: { json?: boolean; dataDir?: string }) => {
      const { rotateClient } = await repos()
      const { client, key } = await withStore(deps, opts, (store) => rotateClient(store.db, name))
      if (opts.json) return printJson(deps, { ...client, key })
      out(deps, `New key for client '${client.name}', shown only this once:\n\n  ${key}\n`)
    })

  return cmd
}

export interface LimitFlags {
  rpm?: string
  tpm?: string
  dailyTokens?: string
  monthlyTokens?: string
  limit?: string[]
  clearLimits?: boolean
}

export function limitOptions(cmd: Command): Command {
  return cmd
    .option('--rpm <n>', 'requests per minute')
    .option('--tpm <n>', 'tokens per minute (estimated before the call, settled with the usage the upstream reports)')
    .option('--daily-tokens <n>', 'token quota per UTC day')
    .option('--monthly-tokens <n>', 'token quota per UTC month')
    .option('--limit <kind=N/window>', `a sliding window, repeatable: requests=100/10s, tokens=2000000/1h (${RATE_SYNTAX.replace(/^N\/WINDOW with /, '')})`, repeatable)
}

export function limitsPatch(opts: LimitFlags, allowOff: boolean): ClientLimitsPatch {
  const patch: ClientLimitsPatch = {}
  const num = (flag: string, value: string | undefined): number | null | undefined => {
    if (value === undefined) return undefined
    if (allowOff && /^(off|none)$/i.test(value.trim())) return null
    const n = parseCount(value)
    if (n === null) throw new CliError(`${flag} takes a whole number such as 600, 100k or 2M${allowOff ? ", or 'off'" : ''}, not '${value}'.`)
    return n
  }
  const fields = [
    ['rpm', '--rpm', opts.rpm],
    ['tpm', '--tpm', opts.tpm],
    ['dailyTokens', '--daily-tokens', opts.dailyTokens],
    ['monthlyTokens', '--monthly-tokens', opts.monthlyTokens],
  ] as const
  for (const [field, flag, value] of fields) {
    const n = num(flag, value)
    if (n !== undefined) patch[field] = n
  }
  if (opts.clearLimits) patch.clearLimits = true
  if (opts.limit?.length) {
    patch.limits = opts.limit.map((text): WindowLimit => {
      const w = parseLimitFlag(text)
      if (!w) throw new CliError(`--limit takes requests=N/WINDOW or tokens=N/WINDOW, ${RATE_SYNTAX.replace(/^N\/WINDOW with /, 'with ')}; not '${text}'.`)
      return w
    })
  }
  return patch
}

/** '600', '100k', '2M', '1.5M' -> a whole number; null when malformed. */
export function parseCount(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(text)
  if (!m) return null
  const n = Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6)
  return Number.isSafeInteger(n) && n >= 1 ? n : null
}

export function describeLimits(c: Pick<ClientSummary, 'rpm' | 'tpm' | 'limits' | 'dailyTokens' | 'monthlyTokens'>): string {
  const parts: string[] = []
  if (c.rpm) parts.push(`${formatCount(c.rpm)} rpm`)
  if (c.tpm) parts.push(`${formatCount(c.tpm)} tpm`)
  for (const l of c.limits) {
    const [kind, rate] = l.split('=') as [string, string]
    const [n, window] = rate.split('/') as [string, string]
    parts.push(`${formatCount(Number(n))}/${window} ${kind === 'requests' ? 'req' : 'tok'}`)
  }
  if (c.dailyTokens) parts.push(`${formatCount(c.dailyTokens)} tok/day`)
  if (c.monthlyTokens) parts.push(`${formatCount(c.monthlyTokens)} tok/month`)
  return parts.length ? parts.join(', ') : 'none'
}

/** '12.3k/100k' against a quota, '12.3k' without one. */
function againstQuota(used: number, quota: number | null): string {
  return quota ? `${formatCount(used)}/${formatCount(quota)}` : formatCount(used)
}

export function parseExpiry(text: string, now = Date.now()): string {
  const ms = parseDuration(text)
  if (ms !== null) return new Date(now + ms).toISOString()
  const date = Date.parse(text)
  if (Number.isNaN(date)) throw new CliError(`--expires takes a duration like 30d, 12h, 2w or a date like 2027-01-31, not '${text}'.`)
  if (date <= now) throw new CliError(`--expires ${text} is in the past.`)
  return new Date(date).toISOString()
}

function teamOptions(cmd: Command): Command {
  return budgetOptions(cmd).option('--team <name>', "the team whose limits, quotas and budgets it also draws on ('off': none)")
}

/** Sets a subject's budgets through the store (checking that its models have prices). */
export async function setBudgetsOf(deps: CliDeps, opts: { dataDir?: string }, level: 'client' | 'team' | 'provider' | 'global', name: string | null, patch: { daily?: number | null; monthly?: number | null }): Promise<void> {
  const { setBudgets } = await import('../store/repos/budgets.js')
  await withStore(deps, opts, (store) => setBudgets(store.db, level, name, patch))
}
