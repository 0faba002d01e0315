/**
 * The second half of `npm run build`: bundles the CLI that `bin/proxy.js` runs into dist/bundle/.
 *
 * Node's ES module loader opens, stats and compiles each file on its own, and a command's few hundred
 * files (kysely alone is 263 of `keys ls`) cost more than the command does: 160 ms of a `keys ls` that
 * answers in 220 (docs/performance.md, "CLI start-up"). esbuild makes them a few files:
 * - ES modules with code splitting, so each `await import()` in a command's action stays a chunk of its
 *   own and a command still loads only what it uses (test/cli/lazy-load.test.ts reads the metafile
 *   written here to tell which sources a chunk holds);
 * - one flat folder, so a module that finds a file beside itself (`new URL('./audit-thread.js',
 *   import.meta.url)`) finds it: the thread scripts are entry points of their own;
 * - packages that load native code, find their own files at run time, or are loaded only by an option
 *   few servers turn on stay in node_modules (EXTERNAL).
 * dist/src/ (tsc's output) stays: tests and tools import it.
 */
import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const root = path.resolve(import.meta.dirname, '..')
const BUNDLE_DIR = path.join(root, 'dist', 'bundle')
/** which sources each file of the bundle holds (esbuild's metafile), for the load tests */
export const BUNDLE_META = path.join(BUNDLE_DIR, 'meta.json')

/** What bin/proxy.js and the worker threads start from. */
const ENTRY_POINTS = ['src/cli/main.ts', 'src/store/audit-thread.js']
/**
 * bin/proxy.js is CommonJS, to start without node's ES module loader, and decides with this module
 * whether `serve` needs a node started with other flags before it loads anything else.
 */
const LAUNCHER = { entry: 'src/cli/respawn.ts', outfile: 'respawn.cjs' }

/**
 * Left out of the bundle: native addons, pg's optional native client, pino-pretty (loaded through
 * `createRequire`, see src/telemetry/pino-pretty.ts), and the AWS SDK, which only an S3 capture store
 * loads and which is larger than the rest together. Ink imports react-devtools-core only with DEV=true,
 * and it is not installed. (The OpenTelemetry SDK is bundled, as chunks of its own that only
 * `--otlp-endpoint` loads, so that it and the request path share one copy of @opentelemetry/api.)
 */
const EXTERNAL = ['better-sqlite3', 'better-sqlite3-napi', '@napi-rs/keyring', 'pg-native', 'pino-pretty', '@aws-sdk/*', 'react-devtools-core']

/** CommonJS packages in an ES module bundle call `require` for node's own modules: give them one. */
const REQUIRE_SHIM = "import { createRequire as __proxyCreateRequire } from 'node:module'; const require = __proxyCreateRequire(import.meta.url);"

/** What both builds share: one node target, and whitespace and syntax minified only, so names stay readable in stack traces. */
const COMMON = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
} as const

export async function buildBundle(): Promise<void> {
  rmSync(BUNDLE_DIR, { recursive: true, force: true })
  const cli = await build({
    ...COMMON,
    entryPoints: ENTRY_POINTS,
    outdir: BUNDLE_DIR,
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    splitting: true,
    format: 'esm',
    jsx: 'automatic',
    external: EXTERNAL,
    banner: { js: REQUIRE_SHIM },
  })
  const launcher = await build({ ...COMMON, entryPoints: [LAUNCHER.entry], outfile: path.join(BUNDLE_DIR, LAUNCHER.outfile), format: 'cjs' })
  const meta = { inputs: { ...cli.metafile.inputs, ...launcher.metafile.inputs }, outputs: { ...cli.metafile.outputs, ...launcher.metafile.outputs } }
  writeFileSync(BUNDLE_META, JSON.stringify(meta))
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await buildBundle()
