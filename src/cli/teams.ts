import { Command } from 'commander'
import { budgetOptions, budgetPatch, formatBudget, hasBudgets, type BudgetFlags } from './budget-flags.js'
import { describeLimits, limitOptions, limitsPatch, setBudgetsOf, type LimitFlags } from './clients.js'
import { CliError, dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

const repos = () => import('../store/repos/teams.js')

export function teamsCommand(deps: CliDeps): Command {
  const cmd = new Command('teams').description('groups of clients that share rate limits, token quotas and money budgets')

  budgetOptions(limitOptions(dataDirOption(jsonOption(cmd.command('add <name>')))))
    .description('create a team; put clients in it with proxy clients set NAME --team TEAM')
    .addHelpText('after', '\nExamples:\n  proxy teams add search\n  proxy teams add research --rpm 600 --monthly-tokens 50M --monthly-budget 500')
    .action(async (name: string, opts: LimitFlags & BudgetFlags & { json?: boolean; dataDir?: string }) => {
      const patch = limitsPatch(opts, false)
      const budgets = budgetPatch(opts)
      const { addTeam } = await repos()
      const team = await withStore(deps, opts, (store) => addTeam(store.db, name, patch))
      if (hasBudgets(budgets)) {
        try {
          await setBudgetsOf(deps, opts, 'team', name, budgets)
        } catch (e) {
          throw new CliError(`Team '${name}' was created, but without its budget: ${e instanceof Error ? e.message : String(e)}`)
        }
      }
      if (opts.json) return printJson(deps, team)
      out(deps, `Created team '${team.name}' (limits: ${describeLimits(team)}). Add clients with 'proxy clients set CLIENT --team ${team.name}'.`)
    })

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list teams with their clients, limits, budgets and what they spent today and this month')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const [{ listTeams }, { listBudgets }, { loadPeriodTotals }] = await Promise.all([repos(), import('../store/repos/budgets.js'), import('../store/repos/period-totals.js')])
      const iso = new Date().toISOString()
      const [teams, budgets, spent] = await withStore(deps, opts, (store) => Promise.all([listTeams(store.db), listBudgets(store.db), loadPeriodTotals(store.db, 'spend:team', iso.slice(0, 10), iso.slice(0, 7))]))
      const rows = teams.map((t) => {
        const budget = (period: 'day' | 'month') => budgets.find((b) => b.level === 'team' && b.subjectId === t.id && b.period === period)?.limitMicros ?? null
        const used = (period: 'day' | 'month') => spent.find((s) => s.subjectId === t.id && s.period === period)?.amount ?? 0
        return { ...t, dailyBudgetMicros: budget('day'), monthlyBudgetMicros: budget('month'), spentTodayMicros: used('day'), spentMonthMicros: used('month') }
      })
      if (opts.json) return printJson(deps, rows)
      if (rows.length === 0) return out(deps, "No teams yet. Create one with 'proxy teams add NAME'.")
      out(
        deps,
        table(
          rows.map((t) => ({
            name: t.name,
            clients: t.clients.length ? t.clients.join(',') : '-',
            limits: describeLimits(t),
            today: `${formatBudget(t.spentTodayMicros)}/${formatBudget(t.dailyBudgetMicros)}`,
            month: `${formatBudget(t.spentMonthMicros)}/${formatBudget(t.monthlyBudgetMicros)}`,
          })),
          ['name', 'clients', 'limits', 'today', 'month'],
        ),
      )
    })

  budgetOptions(limitOptions(dataDirOption(jsonOption(cmd.command('set <name>')))))
    .description("change a team's limits, quotas and budgets (running servers apply them within about a second)")
    .option('--clear-limits', 'remove every --limit window first')
    .addHelpText('after', '\nExamples:\n  proxy teams set search --tpm 200k --daily-budget 20\n  proxy teams set search --monthly-budget off')
    .action(async (name: string, opts: LimitFlags & BudgetFlags & { clearLimits?: boolean; json?: boolean; dataDir?: string }) => {
      const patch = limitsPatch(opts, true)
      const budgets = budgetPatch(opts)
      if (Object.keys(patch).length === 0 && !hasBudgets(budgets)) throw new CliError('Nothing to change: give --rpm, --tpm, --daily-tokens, --monthly-tokens, --limit, --clear-limits, --daily-budget or --monthly-budget.')
      const { setTeamLimits, getTeam } = await repos()
      await withStore(deps, opts, (store) => getTeam(store.db, name))
      if (hasBudgets(budgets)) await setBudgetsOf(deps, opts, 'team', name, budgets)
      const team = await withStore(deps, opts, async (store) => (Object.keys(patch).length > 0 ? setTeamLimits(store.db, name, patch) : (await (await repos()).listTeams(store.db)).find((t) => t.name === name)!))
      if (opts.json) return printJson(deps, team)
      out(deps, `Team '${team.name}': limits ${describeLimits(team)}${hasBudgets(budgets) ? `, budgets ${formatBudget(budgets.daily)}/day ${formatBudget(budgets.monthly)}/month` : ''}. Running servers apply it within about a second.`)
    })

  dataDirOption(cmd.command('rm <name>'))
    .description('remove a team; its clients stay, with their own limits only')
    .action(async (name: string, opts: { dataDir?: string }) => {
      const { removeTeam } = await repos()
      await withStore(deps, opts, (store) => removeTeam(store.db, name))
      out(deps, `Removed team '${name}'.`)
    })

  return cmd
}
