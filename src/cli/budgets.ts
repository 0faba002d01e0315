import { Command, Option } from 'commander'
import { budgetOptions, budgetPatch, formatBudget, hasBudgets, type BudgetFlags } from './budget-flags.js'
import { parseCount, setBudgetsOf } from './clients.js'
import { CliError, dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

export function budgetsCommand(deps: CliDeps): Command {
  const cmd = new Command('budgets').description('money budgets (USD per UTC day and month) on all requests, a client, a team or a provider')

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('every budget with what was spent against it today and this month')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const [{ listBudgets }, { loadPeriodTotals }] = await Promise.all([import('../store/repos/budgets.js'), import('../store/repos/period-totals.js')])
      const iso = new Date().toISOString()
      const rows = await withStore(deps, opts, async (store) => {
        const lines = await listBudgets(store.db)
        const spent = new Map<string, number>()
        for (const level of new Set(lines.map((l) => l.level))) {
          for (const t of await loadPeriodTotals(store.db, `spend:${level}`, iso.slice(0, 10), iso.slice(0, 7))) spent.set(`${level}|${t.subjectId}|${t.period}`, t.amount)
        }
        return lines.map((l) => ({ ...l, spentMicros: spent.get(`${l.level}|${l.subjectId}|${l.period}`) ?? 0 }))
      })
      if (opts.json) return printJson(deps, rows)
      if (rows.length === 0) return out(deps, "No budgets yet. Set one with 'proxy budgets set --monthly-budget 100' (all requests), or with '--level client|team|provider --name NAME'.")
      out(
        deps,
        table(
          rows.map((r) => ({ level: r.level, name: r.name ?? '-', period: r.period, budget: formatBudget(r.limitMicros), spent: formatBudget(r.spentMicros), used: `${Math.round((r.spentMicros / r.limitMicros) * 100)}%` })),
          ['level', 'name', 'period', 'budget', 'spent', 'used'],
        ),
      )
    })

  budgetOptions(dataDirOption(cmd.command('set')))
    .description("set or remove ('off') the daily and monthly budgets of all requests (global), a client, a team or a provider")
    .addOption(new Option('--level <level>', 'what the budget covers').choices(['global', 'client', 'team', 'provider']).default('global'))
    .option('--name <name>', 'the client, team or provider (not for global)')
    .option('--output-cap <tokens>', "the output tokens a reservation assumes for a request without max_tokens (default 4096), or 'off'")
    .addHelpText('after', '\nRunning servers apply budgets within about a second. A budget is refused while a model it covers has no price.\n\nExamples:\n  proxy budgets set --monthly-budget 1000\n  proxy budgets set --level provider --name openai --monthly-budget 500\n  proxy budgets set --level client --name my-app --daily-budget 5\n  proxy budgets set --level team --name search --daily-budget off\n  proxy budgets set --output-cap 16000')
    .action(async (opts: BudgetFlags & { level: 'global' | 'client' | 'team' | 'provider'; name?: string; outputCap?: string; dataDir?: string }) => {
      const patch = budgetPatch(opts)
      if (opts.outputCap !== undefined) {
        const off = /^(off|none)$/i.test(opts.outputCap.trim())
        const cap = off ? null : parseCount(opts.outputCap)
        if (!off && cap === null) throw new CliError(`--output-cap takes a number of tokens such as 4096 or 16k, or 'off'; not '${opts.outputCap}'.`)
        const { setOutputCap } = await import('../store/repos/budgets.js')
        await withStore(deps, opts, (store) => setOutputCap(store.db, cap))
        out(deps, cap === null ? 'Requests without max_tokens are reserved for 4096 output tokens again.' : `Requests without max_tokens are reserved for ${cap} output tokens.`)
        if (!hasBudgets(patch)) return
      }
      if (!hasBudgets(patch)) throw new CliError('Nothing to change: give --daily-budget and/or --monthly-budget (an amount of USD, or off), or --output-cap.')
      if (opts.level !== 'global' && !opts.name) throw new CliError(`A ${opts.level} budget needs --name.`)
      await setBudgetsOf(deps, opts, opts.level, opts.level === 'global' ? null : opts.name!, patch)
      const what = opts.level === 'global' ? 'all requests' : `${opts.level} '${opts.name}'`
      const parts = [patch.daily !== undefined ? `${formatBudget(patch.daily)}/day` : null, patch.monthly !== undefined ? `${formatBudget(patch.monthly)}/month` : null].filter((p) => p !== null)
      out(deps, `Budgets of ${what}: ${parts.join(', ')}. Running servers apply them within about a second.`)
    })

  return cmd
}
