/**
 * The executable's main script (bundled by build/exe.ts): the same CLI as bin/proxy.js. A SEA's main
 * script is CommonJS and cannot await at its top level, hence the function.
 */
import { main } from '../../src/cli/main.js'
import { initYoga } from './yoga-layout.js'

/** the commands that draw with Ink, whose layout engine loads asynchronously */
const INK_COMMANDS = new Set(['top'])

async function start(): Promise<void> {
  if (process.argv.slice(2).some((arg) => INK_COMMANDS.has(arg))) await initYoga()
  await main(process.argv)
}

void start()
