/**
 * `proxy top`: a live dashboard of a running server, drawn from GET /admin/v1/stats. This file only
 * declares the command: Ink and React are imported inside the action, so other commands do not load
 * them at start-up.
 */
import { Command } from 'commander'
import { CliError, dataDirOnlyOption, jsonOption, parseIntOption, type CliDeps } from '../context.js'

interface TopFlags {
  url?: string
  adminKey?: string
  dataDir?: string
  interval: number
  once?: boolean
  json?: boolean
}

export function topCommand(deps: CliDeps): Command {
  return dataDirOnlyOption(jsonOption(new Command('top')))
    .description('live dashboard of a running server: request and error rates, latency, providers, keys, recent requests')
    .option('--url <url>', "a server's URL (e.g. http://10.0.0.5:8000); needs --admin-key unless it is the local server's")
    .option('--admin-key <key>', 'an admin client key for --url (or $PROXY_ADMIN_KEY); the local server is reached with its admin.token, by --url too')
    .option('--interval <ms>', 'refresh interval', parseIntOption('--interval'), 1000)
    .option('--once', 'print one frame and exit (for scripts; also what happens when stdout is not a terminal)')
    .addHelpText(
      'after',
      '\nKeys: q quit, tab next panel, p pause, s sort the panel, 1/2/3 jump to a panel.\n\nExamples:\n  proxy top                                   # the server started with the same --data-dir\n  proxy top --once --json                     # the raw figures\n  PROXY_ADMIN_KEY=sk-proxy-… proxy top --url http://10.0.0.5:8000',
    )
    .action(async (flags: TopFlags) => {
      if (flags.json && !flags.once) throw new CliError('--json prints one report: use it with --once.')
      if (flags.interval < 100) throw new CliError('--interval must be at least 100 ms.')
      const { adminTarget, createAdminClient } = await import('../admin-client.js')
      const client = createAdminClient(adminTarget(flags, deps.env))
      if (flags.once || !deps.stdout.isTTY) {
        const { printOnce } = await import('./once.js')
        await printOnce(deps, client, { json: flags.json === true })
        return
      }
      const { runTop } = await import('./run.js')
      await runTop(deps, client, flags.interval)
    })
}
