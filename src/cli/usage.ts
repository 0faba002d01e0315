import { Command, Option } from 'commander'
import type { UsageGrouping } from '../store/repos/usage.js'
import { formatUsd, parseSince } from './audit.js'
import { dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

export function usageCommand(deps: CliDeps): Command {
  return dataDirOption(jsonOption(new Command('usage')))
    .description('requests, tokens and cost per client, team, model or day (UTC days)')
    .addOption(new Option('--by <what>', 'group by').choices(['client', 'model', 'day', 'team']).default('client'))
    .option('--since <when>', 'a duration back from now (7d, 24h) or an ISO date; whole UTC days (default: everything)')
    .option('--client <name>', 'only this client')
    .option('--model <model>', 'only this model')
    .addHelpText(
      'after',
      "\nCost comes from the price of the upstream model: a stored price (proxy prices set), else a provider's settings\nprice_in/price_out, else a built-in table (see proxy prices ls). Models without a price count as $0 and are listed.\n\nExamples:\n  proxy usage\n  proxy usage --by team --since 30d\n  proxy usage --by day --since 7d\n  proxy usage --by model --client my-app --json",
    )
    .action(async (opts: { by: UsageGrouping; since?: string; client?: string; model?: string; json?: boolean; dataDir?: string }) => {
      const sinceDay = opts.since ? parseSince(opts.since).slice(0, 10) : undefined
      const [{ queryUsage, servedModels }, { PriceBook }, { listPrices }] = await Promise.all([import('../store/repos/usage.js'), import('../core/prices.js'), import('../store/repos/prices.js')])
      const { lines, unpriced } = await withStore(deps, opts, async (store) => {
        const [lines, served, stored, providers] = await Promise.all([
          queryUsage(store.db, { by: opts.by, sinceDay, client: opts.client, model: opts.model }),
          servedModels(store.db, sinceDay),
          listPrices(store.db),
          store.db.selectFrom('providers').select(['name', 'settings']).execute(),
        ])
        const book = new PriceBook(stored)
        const settings = new Map(providers.map((p) => [p.name, JSON.parse(p.settings) as Record<string, unknown>]))
        return { lines, unpriced: served.filter((s) => !book.resolve(s.provider, s.model, settings.get(s.provider))) }
      })
      const note = unpriced.length
        ? `\nno known price (counted as $0): ${unpriced.map((u) => `${u.provider}/${u.model} (${u.requests} requests)`).join(', ')}. Set one with 'proxy prices set MODEL --provider P --input N --output N'.`
        : ''
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
      if (opts.json) return printJson(deps, { by: opts.by, since: sinceDay ?? null, rows: lines.map((l) => ({ [opts.by]: l.key, ...withoutKey(l) })), total, unpriced })
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
      out(deps, table(rows, [opts.by, 'requests', 'errors', 'tokens_in', 'tokens_out', 'cost_usd', ...cache]) + note)
    })
}

function withoutKey<T extends { key: string }>(line: T): Omit<T, 'key'> {
  const { key: _key, ...rest } = line
  return rest
}
