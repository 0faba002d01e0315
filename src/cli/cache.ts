/**
 * `proxy cache`: the response cache of a running server (docs/cache.md), through its admin API, like
 * `proxy top`: the local server by default, any other with --url and --admin-key. The admin client is
 * loaded by the action (cache-actions.ts), as every command loads its implementation.
 */
import { Command } from 'commander'
import { dataDirOnlyOption, jsonOption, type CliDeps } from './context.js'
import type { LiveFlags } from './cache-actions.js'

function live(cmd: Command): Command {
  return dataDirOnlyOption(jsonOption(cmd))
    .option('--url <url>', "a server's URL; needs --admin-key unless it is the local server's")
    .option('--admin-key <key>', 'an admin client key for --url (or $PROXY_ADMIN_KEY)')
}

export function cacheCommand(deps: CliDeps): Command {
  const cmd = new Command('cache').description("the exact response cache of a running server: its size, and emptying it (turned on by a policy's 'cache')")

  live(cmd.command('stats'))
    .description('entries and bytes held, and where (memory or Redis)')
    .action(async (flags: LiveFlags) => (await import('./cache-actions.js')).cacheStats(deps, flags))

  live(cmd.command('clear'))
    .description('remove cached answers: all of them, or those to requests for one model')
    .option('--model <model>', 'only answers to requests for this model name (as clients send it)')
    .action(async (flags: LiveFlags & { model?: string }) => (await import('./cache-actions.js')).cacheClear(deps, flags))

  cmd.addHelpText('after', '\nExamples:\n  proxy cache stats\n  proxy cache clear --model gpt-4o-mini\n  PROXY_ADMIN_KEY=sk-proxy-… proxy cache clear --url http://10.0.0.5:8000')
  return cmd
}
