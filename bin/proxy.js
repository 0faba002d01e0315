#!/usr/bin/env node
import module from 'node:module'
import { packageVersion } from '../dist/bundle/package-root.js'
import { respawnArgs, runRespawned } from '../dist/bundle/respawn.js'

// Node 22.1 and later keep V8's compiled code on disk between runs; node 20 has no such cache.
module.enableCompileCache?.()

const args = process.argv.slice(2)
// `serve` runs in a node started with V8 flags (see src/cli/respawn.ts); `--version` is answered here,
// without loading the command tree; the rest of the CLI is loaded only where it runs.
const respawn = respawnArgs(process.argv, process.execArgv, process.platform)
if (respawn) runRespawned(respawn)
else if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${packageVersion()}\n`)
else {
  const { main } = await import('../dist/bundle/main.js')
  await main(process.argv)
}
