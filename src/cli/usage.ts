import { Command, Option } from 'commander'
import type { UsageGrouping } from '../store/repos/usage.js'
import { formatUsd, parseSince } from './audit.js'
import { dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

export function usageCommand(deps: CliDeps): Command {
  return dataDirOption(jsonOption(new Command('usage')))
    .description('requests, tokens and cost per client, model or day (UTC days)')
    .addOption(new Option('--by <what>', 'group by').choices(['client', 'model', 'day']).default('client'))
    .option('--since <when>', 'a duration back from now (7d, 24h) or an ISO date; whole UTC days (default: everything)')
    .option('--client <name>', 'only this client')
    .option('--model <model>', 'only this model')
    .addHelpText(
      'after',
      "\nCost comes from a built-in price table matched on the upstream model; a provider's settings price_in/price_out\n(USD per 1M tokens) override it: proxy providers add NAME --type T --setting price_in=0.5 --setting price_out=1.5\n\nExamples:\n  proxy usage\n  proxy usage --by day --since 7d\n  proxy usage --by model --client my-app --json",
    )
    .action(async (opts: { by: UsageGrouping; since?: string; client?: string; model?: string; json?: boolean; dataDir?: string }) => {
      const sinceDay = opts.since ? parseSince(opts.since).slice(0, 10) : undefined
      const { queryUsage } = await import('../store/repos/usage.js')
      const lines = await withStore(deps, opts, (store) => queryUsage(store.db, { by: opts.by, sinceDay, client: opts.client, model: opts.model }))
      const total = lines.reduce(
        (t, l) => ({
          requests: t.requests + l.requests,
          errors: t.errors + l.errors,
          promptTokens: t.promptTokens + l.promptTokens,
          completionTokens: t.completionTokens + l.completionTokens,
          costUsd: t.costUsd + l.costUsd,
          cacheHits: t.cacheHits + l.cacheHits,
          savedUsd: t.savedUsd + l.savedUsd,
        }),
        { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, cacheHits: 0, savedUsd: 0 },
      )
      if (opts.json) return printJson(deps, { by: opts.by, since: sinceDay ?? null, rows: lines.map((l) => ({ [opts.by]: l.key, ...withoutKey(l) })), total })
      if (lines.length === 0) return out(deps, `No usage recorded${sinceDay ? ` since ${sinceDay}` : ''} yet.`)
      const row = (key: string, l: typeof total) => ({
        [opts.by]: key,
        requests: l.requests,
        errors: l.errors,
        tokens_in: l.promptTokens,
        tokens_out: l.completionTokens,
        cost_usd: formatUsd(l.costUsd),
        cache_hits: l.cacheHits,
        saved_usd: formatUsd(l.savedUsd),
      })
      const rows = [...lines.map((l) => row(l.key, l)), row('TOTAL', total)]
      // the response cache's columns only where it answered something
      const cache = total.cacheHits > 0 ? ['cache_hits', 'saved_usd'] : []
      out(deps, table(rows, [opts.by, 'requests', 'errors', 'tokens_in', 'tokens_out', 'cost_usd', ...cache]))
    })
}

function withoutKey<T extends { key: string }>(line: T): Omit<T, 'key'> {
  const { key: _key, ...rest } = line
  return rest
}
