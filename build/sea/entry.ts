/**
 * The CLI bundle's entry (bundled by build/exe.ts, run by the executable's main script, build/sea/main.ts):
 * the same CLI as bin/proxy.js. The bundle is CommonJS and cannot await at its top level, hence the
 * function; the CLI is imported inside it, so the bundle evaluates its modules only for a command that
 * needs them.
 */
import { initYoga } from './yoga-layout.js'

/** the commands that draw with Ink, whose layout engine loads asynchronously */
const INK_COMMANDS = new Set(['top'])

async function start(): Promise<void> {
  if (process.argv.slice(2).some((arg) => INK_COMMANDS.has(arg))) await initYoga()
  const { main } = await import('../../src/cli/main.js')
  await main(process.argv)
}

void start()
