/**
 * The CLI bundle (build/sea/entry.ts) as the executable runs it: not the SEA main script, whose whole
 * text and code cache node reads before any line of it runs, but an asset the main script compiles only
 * for a command that needs it, with V8's code cache the build made for the same text
 * (build/sea/write-code-cache.ts).
 */
import { getRawAsset } from 'node:sea'
import { constants, Script } from 'node:vm'

export const CLI_ASSET = 'proxy.cjs'
export const CLI_CACHE_ASSET = 'proxy.cjs.cache'

/** The bundle's text as V8 compiles it, at build time and at run time alike: a CommonJS module's function. */
export function cliScriptSource(bundle: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${bundle}\n})`
}

/** An asset's bytes where the executable holds them, without a copy (node's types say string, wrongly). */
function rawAsset(name: string): Buffer {
  return Buffer.from(getRawAsset(name) as ArrayBuffer)
}

/** Compiles the bundle with its code cache and runs it as the module `module`, with node's `require`. */
export function runCli(require: NodeJS.Require, module: NodeJS.Module): void {
  // the build keeps the bundle ASCII, so Latin-1 reads it as is and V8 holds it one byte a character
  const bundle = rawAsset(CLI_ASSET).toString('latin1')
  const script = new Script(cliScriptSource(bundle), {
    filename: process.execPath,
    cachedData: rawAsset(CLI_CACHE_ASSET),
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  if (script.cachedDataRejected) {
    process.emitWarning("V8 rejected the CLI's code cache (V8 flags other than the build's?): every start compiles the CLI")
  }
  const run = script.runInThisContext() as (...args: unknown[]) => void
  run(module.exports, require, module, process.execPath, module.path)
}
