import { Command } from 'commander'
import { auditCommand } from './audit.js'
import { cacheCommand } from './cache.js'
import { circuitCommand } from './circuit.js'
import { budgetsCommand } from './budgets.js'
import { clientsCommand } from './clients.js'
import { completionCommand } from './completion.js'
import type { CliDeps } from './context.js'
import { doctorCommand } from './doctor.js'
import { keysCommand } from './keys.js'
import { packageVersion } from './package-root.js'
import { modelsCommand } from './models.js'
import { policyCommand } from './policy.js'
import { pricesCommand } from './prices.js'
import { providersCommand } from './providers.js'
import { secretsCommand } from './secrets.js'
import { serveCommand } from './serve.js'
import { serviceCommand } from './service.js'
import { storeCommand } from './store.js'
import { topCommand } from './top/index.js'
import { teamsCommand } from './teams.js'
import { usageCommand } from './usage.js'

export const VERSION = packageVersion()

/** The whole CLI, built from its dependencies so tests can run any command in-process. */
export function buildProgram(deps: CliDeps): Command {
  const program = new Command('proxy')
    .description('An OpenAI-compatible LLM gateway with an embedded store')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (s) => deps.stdout.write(s), writeErr: (s) => deps.stderr.write(s) })
    .addHelpText('after', '\nStart here:\n  proxy serve --demo          serve mock models with a demo client key\n  proxy providers add --help  connect a real provider\n\nEvery command takes --data-dir (or $PROXY_DATA_DIR).')
  for (const cmd of [serveCommand(deps), providersCommand(deps), keysCommand(deps), secretsCommand(deps), modelsCommand(deps), clientsCommand(deps), teamsCommand(deps), budgetsCommand(deps), pricesCommand(deps), policyCommand(deps), circuitCommand(deps), serviceCommand(deps), storeCommand(deps), doctorCommand(deps), auditCommand(deps), usageCommand(deps), cacheCommand(deps), topCommand(deps), completionCommand(deps)]) {
    program.addCommand(cmd)
  }
  applyOutput(program, deps)
  return program
}

/** Subcommands write help and errors through the same streams as the root. */
function applyOutput(cmd: Command, deps: CliDeps): void {
  for (const sub of cmd.commands) {
    sub.configureOutput({ writeOut: (s) => deps.stdout.write(s), writeErr: (s) => deps.stderr.write(s) })
    sub.showHelpAfterError('(add --help for usage)')
    applyOutput(sub, deps)
  }
}
