import { Command } from 'commander'
import { CliError, jsonOption, out, printJson, table, type CliDeps } from './context.js'

export function storeCommand(deps: CliDeps): Command {
  const cmd = new Command('store').description('the store itself: move it between SQLite and PostgreSQL')

  jsonOption(cmd.command('copy'))
    .description('copy every table from one store to another (SQLite file or data dir, or postgres:// URL), in one transaction on the target')
    .requiredOption('--from <store>', 'the store to read: a SQLite file, a data directory (its proxy.db), or a postgres:// URL')
    .requiredOption('--to <store>', 'the store to write: a postgres:// URL, or a SQLite file or data directory')
    .option('--force', 'replace what a non-empty target holds')
    .addHelpText(
      'after',
      '\nExamples:\n  proxy store copy --from ~/.local/share/proxy --to postgres://proxy@db.internal/proxy\n  proxy store copy --from postgres://proxy@db.internal/proxy --to ./proxy.db\n\n' +
        'Stop the servers that write the source first (or accept that what they write meanwhile stays behind), and\n' +
        'run the target with the same master key: stored upstream keys are copied encrypted, as they are.',
    )
    .action(async (opts: { from: string; to: string; force?: boolean; json?: boolean }) => {
      const { copyStore, StoreCopyError } = await import('../store/copy.js')
      const result = await copyStore(opts.from, opts.to, { force: opts.force }).catch((e: unknown) => {
        throw e instanceof StoreCopyError ? new CliError(e.message) : e
      })
      if (opts.json) return printJson(deps, result)
      const total = result.tables.reduce((n, t) => n + t.rows, 0)
      out(deps, table(result.tables, ['table', 'rows']))
      out(deps, `\nCopied ${total} row(s) in ${result.tables.length} tables from ${result.from} to ${result.to}${result.replaced ? `, replacing ${result.replaced} row(s) it held` : ''}.`)
    })

  return cmd
}
