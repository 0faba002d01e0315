import { Command } from 'commander'
import { dataDirOption, jsonOption, out, printJson, repeatable, table, withStore, type CliDeps } from './context.js'

const repos = () => import('../store/repos/routes.js')

export function modelsCommand(deps: CliDeps): Command {
  const cmd = new Command('models').description('model names clients use, routed to provider models')

  dataDirOption(jsonOption(cmd.command('add <model>')))
    .description('route a model name to one or more targets, tried in order')
    .requiredOption('--target <provider/upstream-model>', 'a target, repeatable; the first is preferred', repeatable)
    .option('--policy <name>', "a named policy for this route (layered over 'global'; a client's own policy wins)")
    .option('--replace', 'replace the targets of an existing route')
    .addHelpText('after', '\nExamples:\n  proxy models add gpt-4o-mini --target openai/gpt-4o-mini\n  proxy models add smart --target anthropic/claude-sonnet-4-5 --target openai/gpt-4o\n  proxy models add smart --target openai/gpt-4o --policy patient --replace   # requests for it run under policy \'patient\'\n  proxy models add \'claude-sonnet-4-5*\' --target anthropic/claude-sonnet-4-5   # a pattern: catches claude-sonnet-4-5-20250929\n  proxy models add \'claude-*\' --target anthropic/claude-*   # * in the target: the text the pattern matched\n\nA model name with * is a pattern; an exact name always wins over a pattern, and the pattern with the\nmost literal characters wins over the others.\n\n--policy names a policy stored with \'proxy policy set NAME --file …\'; it is layered over the global one\n(and under a client\'s own --policy). See it with \'proxy policy show MODEL\'.')
    .action(async (model: string, opts: { target: string[]; policy?: string; replace?: boolean; json?: boolean; dataDir?: string }) => {
      const { addRoute, parseTarget } = await repos()
      const targets = opts.target.map(parseTarget)
      const route = await withStore(deps, opts, (store) => addRoute(store.db, model, targets, { replace: opts.replace, policy: opts.policy ?? null }))
      if (opts.json) return printJson(deps, route)
      out(deps, `Model '${route.model}' -> ${route.targets.map((t) => `${t.provider}/${t.upstreamModel}`).join(' , then ')}`)
    })

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list routed models')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const { listRoutes } = await repos()
      const routes = await withStore(deps, opts, (store) => listRoutes(store.db))
      if (opts.json) return printJson(deps, routes)
      if (routes.length === 0) return out(deps, "No models yet. Route one with 'proxy models add MODEL --target PROVIDER/UPSTREAM_MODEL'.")
      out(deps, table(routes.map((r) => ({ model: r.model, targets: r.targets.map((t) => `${t.provider}/${t.upstreamModel}`).join(' > '), policy: r.policy })), ['model', 'targets', 'policy']))
    })

  dataDirOption(cmd.command('rm <model>'))
    .description('remove a route')
    .action(async (model: string, opts: { dataDir?: string }) => {
      const { removeRoute } = await repos()
      await withStore(deps, opts, (store) => removeRoute(store.db, model))
      out(deps, `Removed model '${model}'.`)
    })

  return cmd
}
