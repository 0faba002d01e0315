/**
 * The executable's main script (bundled by build/exe.ts), small so that node starts it at once:
 * `--version` is answered from the manifest, and any other command runs the CLI bundle.
 */
import { runCli } from './cli-script.js'
import { seaManifest } from './manifest.js'

const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${seaManifest().version}\n`)
} else {
  runCli(require, module)
}
