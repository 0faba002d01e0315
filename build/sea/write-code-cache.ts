/**
 * `node <the executable's V8 flags> --import tsx build/sea/write-code-cache.ts BUNDLE OUT`, run by
 * build/exe.ts: writes V8's code cache for the CLI bundle as the executable compiles it. V8 takes a cache
 * only from the same V8 version and flags, hence a node like the one inside the executable, started
 * with its flags.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { Script } from 'node:vm'
import { cliScriptSource } from './cli-script.js'

const [bundle, out] = process.argv.slice(2)
if (!bundle || !out) throw new Error('usage: write-code-cache.ts BUNDLE OUT')
const script = new Script(cliScriptSource(readFileSync(bundle, 'latin1')), { filename: bundle })
writeFileSync(out, script.createCachedData())
