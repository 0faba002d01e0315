import { Command } from 'commander'
import { CliError, dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

interface PriceFlags {
  provider?: string
  input?: string
  output?: string
  cachedInput?: string
  cacheWrite?: string
  json?: boolean
  dataDir?: string
}

export function pricesCommand(deps: CliDeps): Command {
  const cmd = new Command('prices').description('USD per 1M tokens per model: stored prices override provider settings and the built-in table')

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('the price of every model the routes use, and where it comes from (store, provider setting, built-in)')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const { priceReport } = await import('./prices-report.js')
      const rows = await withStore(deps, opts, (store) => priceReport(store.db))
      if (opts.json) return printJson(deps, rows)
      if (rows.length === 0) return out(deps, "No routes and no stored prices yet. Set one with 'proxy prices set MODEL --input N --output N'.")
      const usd = (n: number | null | undefined) => (n === null || n === undefined ? '-' : String(n))
      out(
        deps,
        table(
          rows.map((r) => ({ ...r, provider: r.provider ?? '*', input: usd(r.input), output: usd(r.output), cached_input: usd(r.cachedInput), cache_write: usd(r.cacheWrite), source: r.source ?? 'UNKNOWN (counted as $0)' })),
          ['model', 'provider', 'input', 'output', 'cached_input', 'cache_write', 'source'],
        ),
      )
    })

  dataDirOption(jsonOption(cmd.command('set <model>')))
    .description('store the price of a model (for one provider with --provider), in USD per 1M tokens')
    .option('--provider <name>', 'only for this provider (default: every provider)')
    .requiredOption('--input <usd>', 'USD per 1M input (prompt) tokens')
    .requiredOption('--output <usd>', 'USD per 1M output (completion) tokens; reasoning tokens count as output')
    .option('--cached-input <usd>', 'USD per 1M prompt tokens read from the cache (default: the input price)')
    .option('--cache-write <usd>', 'USD per 1M prompt tokens written to the cache (default: the input price)')
    .addHelpText('after', '\nA model is named exactly or by a prefix followed by "-" (gpt-4o-mini prices gpt-4o-mini-2024-07-18).\nRunning servers apply prices within about a second.\n\nExamples:\n  proxy prices set gpt-4o-mini --input 0.15 --output 0.6 --cached-input 0.075\n  proxy prices set llama3.1 --provider groq --input 0.05 --output 0.08\n  proxy prices set claude-sonnet-4-5 --input 3 --output 15 --cached-input 0.3 --cache-write 3.75')
    .action(async (model: string, opts: PriceFlags) => {
      const rate = (flag: string, value: string | undefined): number | null => {
        if (value === undefined) return null
        const n = Number(value)
        if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new CliError(`${flag} takes USD per 1M tokens such as 0.15 or 3, not '${value}'.`)
        return n
      }
      const { setPrice } = await import('../store/repos/prices.js')
      const price = await withStore(deps, opts, (store) =>
        setPrice(store.db, { model, provider: opts.provider ?? null, input: rate('--input', opts.input)!, output: rate('--output', opts.output)!, cachedInput: rate('--cached-input', opts.cachedInput), cacheWrite: rate('--cache-write', opts.cacheWrite) }),
      )
      if (opts.json) return printJson(deps, price)
      out(deps, `Price of '${price.model}'${price.provider ? ` on provider '${price.provider}'` : ''}: $${price.input} in, $${price.output} out per 1M tokens. Running servers apply it within about a second.`)
    })

  dataDirOption(cmd.command('rm <model>'))
    .description('remove a stored price (the provider setting or built-in price applies again)')
    .option('--provider <name>', 'the price stored for this provider')
    .action(async (model: string, opts: { provider?: string; dataDir?: string }) => {
      const { removePrice } = await import('../store/repos/prices.js')
      const removed = await withStore(deps, opts, (store) => removePrice(store.db, model, opts.provider ?? null))
      if (!removed) throw new CliError(`No stored price for '${model}'${opts.provider ? ` on provider '${opts.provider}'` : ''}. See 'proxy prices ls'.`)
      out(deps, `Removed the stored price of '${model}'${opts.provider ? ` on provider '${opts.provider}'` : ''}.`)
    })

  return cmd
}
