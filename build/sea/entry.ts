/**
 * The executable's main script (bundled by build/exe.ts): the same CLI as bin/proxy.js. A SEA's main
 * script is CommonJS and cannot await at its top level, hence the function; the CLI is imported inside
 * it, so the bundle evaluates its modules only for a command that needs them.
 */
import { packageVersion } from './package-root.js'
import { initYoga } from './yoga-layout.js'

/** the commands that draw with Ink, whose layout engine loads asynchronously */
const INK_COMMANDS = new Set(['top'])

async function start(): Promise<void> {
  const args = process.argv.slice(2)
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    process.stdout.write(`${packageVersion()}\n`)
    return
  }
  if (args.some((arg) => INK_COMMANDS.has(arg))) await initYoga()
  const { main } = await import('../../src/cli/main.js')
  await main(process.argv)
}

void start()
