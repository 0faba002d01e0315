#!/usr/bin/env node
'use strict'
// CommonJS (bin/package.json): node starts a CommonJS file without its ES module loader, which costs
// node 20 about 30 ms. That is most of `--version`, and all of the first node of `serve` on node 20,
// whose only job is to start the second (docs/performance.md, "CLI start-up").
const { respawnArgs, runRespawned } = require('../dist/bundle/respawn.cjs')

// Node 22.1 and later keep V8's compiled code on disk between runs; node 20 has no such cache.
require('node:module').enableCompileCache?.()

const args = process.argv.slice(2)
// `serve` runs in a node started with V8 flags (see src/cli/respawn.ts); `--version` is answered here,
// without loading the command tree; the rest of the CLI is loaded only where it runs.
const respawn = respawnArgs(process.argv, process.execArgv, process.platform)
if (respawn) runRespawned(respawn)
else if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${require('../package.json').version}\n`)
else import('../dist/bundle/main.js').then(({ main }) => main(process.argv))
