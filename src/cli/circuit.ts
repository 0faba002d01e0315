import { Command } from 'commander'
import type { CircuitAction } from '../store/repos/circuits.js'
import { dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

/**
 * `proxy circuit`: see and override the circuit breakers of providers and keys. The commands edit the
 * store; a running server applies them at its next reload (about a second).
 */
const repos = () => import('../store/repos/circuits.js')

export function circuitCommand(deps: CliDeps): Command {
  const cmd = new Command('circuit').description('circuit breakers per provider and per key: list them, force them open or closed, reset them')

  dataDirOption(jsonOption(cmd.command('ls [target]')))
    .description("list circuits (as a running server last recorded them) with any operator override; target: PROVIDER or PROVIDER/KEY-LABEL")
    .action(async (target: string | undefined, opts: { json?: boolean; dataDir?: string }) => {
      const { listCircuits, parseCircuitTarget } = await repos()
      const rows = await withStore(deps, opts, (store) => listCircuits(store.db, target ? parseCircuitTarget(target) : undefined))
      if (opts.json) return printJson(deps, rows)
      if (rows.length === 0) return out(deps, "No providers yet. Add one with 'proxy providers add NAME --type openai'.")
      out(
        deps,
        table(
          rows.map((r) => ({ ...r, circuit: r.key ? `${r.provider}/${r.key}` : r.provider, health: r.health ?? '', cooldownUntil: r.cooldownUntil ?? '' })),
          ['circuit', 'state', 'override', 'openUntil', 'health', 'cooldownUntil', 'updatedAt'],
        ),
      )
    })

  const action = (name: CircuitAction, description: string, done: (what: string) => string) =>
    dataDirOption(jsonOption(cmd.command(`${name} <target>`)))
      .description(description)
      .action(async (target: string, opts: { json?: boolean; dataDir?: string }) => {
        const { setCircuitOverride, parseCircuitTarget } = await repos()
        const result = await withStore(deps, opts, (store) => setCircuitOverride(store.db, parseCircuitTarget(target), name))
        if (opts.json) return printJson(deps, { circuit: result.name, override: result.mode ?? 'auto' })
        out(deps, done(result.name))
      })

  action('open', 'force a circuit open: the server skips that provider (or key) until close or reset', (what) => `Circuit of ${what} forced open. Running servers skip it within about a second; 'proxy circuit reset ${what}' undoes it.`)
  action('close', 'force a circuit closed: failures no longer open it, until reset', (what) => `Circuit of ${what} forced closed. 'proxy circuit reset ${what}' returns it to automatic.`)
  action('reset', 'return a circuit to automatic, closed, with clean counters', (what) => `Circuit of ${what} reset: automatic and closed.`)

  cmd.addHelpText('after', '\nExamples:\n  proxy circuit ls\n  proxy circuit open openai            # stop sending traffic to a provider\n  proxy circuit open openai/main       # or to one key\n  proxy circuit reset openai')
  return cmd
}
