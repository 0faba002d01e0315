#!/usr/bin/env node
import { respawnArgs, runRespawned } from '../dist/src/cli/respawn.js'

// `serve` runs in a child node started with a V8 flag (see src/cli/respawn.ts); the rest of the CLI
// is loaded only where it runs.
const respawn = respawnArgs(process.argv, process.execArgv, process.platform)
if (respawn) runRespawned(respawn)
else {
  const { main } = await import('../dist/src/cli/main.js')
  await main(process.argv)
}
