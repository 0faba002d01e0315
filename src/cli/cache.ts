/**
 * `proxy cache`: the response cache of a running server (docs/cache.md), through its admin API, like
 * `proxy top`: the local server by default, any other with --url and --admin-key.
 */
import { Command } from 'commander'
import { AdminApiError, adminTarget, createAdminClient } from './admin-client.js'
import { CliError, dataDirOption, jsonOption, out, printJson, type CliDeps } from './context.js'

interface LiveFlags {
  url?: string
  adminKey?: string
  dataDir?: string
  json?: boolean
}

function live(cmd: Command): Command {
  return dataDirOption(jsonOption(cmd))
    .option('--url <url>', "a server's URL; needs --admin-key unless it is the local server's")
    .option('--admin-key <key>', 'an admin client key for --url (or $PROXY_ADMIN_KEY)')
}

export function cacheCommand(deps: CliDeps): Command {
  const cmd = new Command('cache').description("the exact response cache of a running server: its size, and emptying it (turned on by a policy's 'cache')")

  live(cmd.command('stats'))
    .description('entries and bytes held, and where (memory or Redis)')
    .action(async (flags: LiveFlags) => {
      const stats = await asCli(createAdminClient(adminTarget(flags, deps.env)).cacheStats())
      if (flags.json) return printJson(deps, stats)
      const where = stats.backend === 'redis' ? `Redis (keys under ${stats.prefix})${stats.available ? '' : ', unreachable: requests bypass the cache'}` : 'memory'
      out(deps, `${stats.entries} answer(s), ${formatBytes(stats.bytes)}, in ${where}.`)
    })

  live(cmd.command('clear'))
    .description('remove cached answers: all of them, or those to requests for one model')
    .option('--model <model>', 'only answers to requests for this model name (as clients send it)')
    .action(async (flags: LiveFlags & { model?: string }) => {
      const result = await asCli(createAdminClient(adminTarget(flags, deps.env)).cacheClear(flags.model))
      if (flags.json) return printJson(deps, result)
      out(deps, `Removed ${result.cleared} cached answer(s)${flags.model ? ` for model '${flags.model}'` : ''}.`)
    })

  cmd.addHelpText('after', '\nExamples:\n  proxy cache stats\n  proxy cache clear --model gpt-4o-mini\n  PROXY_ADMIN_KEY=sk-proxy-… proxy cache clear --url http://10.0.0.5:8000')
  return cmd
}

/** An admin API failure is a plain CLI error (its message says what to do), not a stack trace. */
async function asCli<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (e) {
    throw e instanceof AdminApiError ? new CliError(e.message) : e
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
