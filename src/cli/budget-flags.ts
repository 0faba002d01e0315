/** --daily-budget / --monthly-budget, shared by clients, teams and budgets: USD in, micro-dollars out. */
import type { Command } from 'commander'
import { CliError } from './context.js'

export interface BudgetFlags {
  dailyBudget?: string
  monthlyBudget?: string
}

export function budgetOptions(cmd: Command): Command {
  return cmd
    .option('--daily-budget <usd>', "money budget per UTC day in USD (5, 0.50), or 'off'")
    .option('--monthly-budget <usd>', "money budget per UTC month in USD, or 'off'")
}

/** The budgets the flags set: micro-dollars, null for 'off', absent when not given. */
export function budgetPatch(opts: BudgetFlags): { daily?: number | null; monthly?: number | null } {
  const patch: { daily?: number | null; monthly?: number | null } = {}
  for (const [field, flag, value] of [['daily', '--daily-budget', opts.dailyBudget], ['monthly', '--monthly-budget', opts.monthlyBudget]] as const) {
    if (value === undefined) continue
    if (/^(off|none)$/i.test(value.trim())) {
      patch[field] = null
      continue
    }
    const m = /^\s*\$?(\d+(?:\.\d{1,6})?)\s*$/.exec(value)
    const micros = m ? Math.round(Number(m[1]) * 1_000_000) : 0
    if (!m || micros < 1) throw new CliError(`${flag} takes an amount of USD such as 5, 0.50 or 100 (at least 0.000001), or 'off'; not '${value}'.`)
    patch[field] = micros
  }
  return patch
}

export const hasBudgets = (patch: { daily?: unknown; monthly?: unknown }): boolean => patch.daily !== undefined || patch.monthly !== undefined

/** '$5.00' for a budget in micro-dollars, '-' for none. */
export function formatBudget(micros: number | null | undefined): string {
  if (micros === null || micros === undefined) return '-'
  const usd = micros / 1_000_000
  return `$${usd >= 1 ? usd.toFixed(2) : usd.toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}`
}
