/**
 * `npm run build:exe`: builds dist/proxy-<os>-<arch>, a Node single executable application (SEA) of the
 * whole CLI, from the sources and the node running this script:
 * 1. esbuild bundles the CLI into one CommonJS file, the audit thread's script into another, with the
 *    few modules that find files of the package swapped for their build/sea/ versions, and the small
 *    main script that runs the CLI (build/sea/main.ts) into a third;
 * 2. a node like the executable's writes V8's code cache for the CLI bundle (build/sea/write-code-cache.ts);
 * 3. the CLI bundle and its code cache, the native addons (better-sqlite3's, and @napi-rs/keyring's when
 *    installed for this platform), the thread's script and a manifest (version, hashes) become SEA
 *    assets; the addons and the thread's script are written to a cache folder on first use
 *    (build/sea/runtime.ts);
 * 4. node writes the SEA blob, and postject injects it into a copy of this node binary.
 * No network, and nothing to compile on the machine that runs the result.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { build, type Plugin } from 'esbuild'
import { serveV8Flags } from '../src/cli/respawn.js'
import { SQLITE_NAPI_PACKAGE, sqlitePackage } from '../src/store/sqlite-driver.js'
import { CLI_ASSET, CLI_CACHE_ASSET } from './sea/cli-script.js'
import { MANIFEST_ASSET } from './sea/manifest.js'

const root = path.resolve(import.meta.dirname, '..')
const seaDir = path.join(root, 'build', 'sea')
const outDir = path.join(root, 'dist', 'sea')
const require = createRequire(import.meta.url)

/** The fuse node's SEA support looks for in the binary (node's docs, "Single executable applications"). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

/** Sources replaced in the bundle, and by what (each module says why it is swappable). */
const SWAPPED_SOURCES: Record<string, string> = {
  'src/cli/package-root.ts': 'package-root.ts',
  'src/telemetry/pino-pretty.ts': 'pino-pretty.ts',
  'src/store/audit-thread-file.ts': 'audit-thread-file.ts',
  'src/store/sqlite-driver.js': 'sqlite-driver.ts',
}
/** Packages replaced in the bundle: they load native or WebAssembly code in ways a bundle cannot follow. */
const SWAPPED_PACKAGES: Record<string, string> = {
  'better-sqlite3': 'better-sqlite3.ts',
  '@napi-rs/keyring': 'keyring.ts',
  'yoga-layout': 'yoga-layout.ts',
}

/**
 * Text replaced in package files the bundle carries. Ink's reconciler awaits at its top level only when
 * DEV=true (to attach React devtools), which a CommonJS bundle cannot hold: the executable has no devtools.
 * The build fails when a text is not found, so an upgrade cannot silently skip a patch.
 */
const PATCHES: Record<string, [string, string][]> = {
  'ink/build/reconciler.js': [
    ["await import('./devtools.js');", 'void 0;'],
    ['await loadPackageJson()', '{ name: undefined, version: undefined }'],
  ],
  // the one character outside ASCII in the bundle, written as an escape (see asciiOnly)
  'rou3/dist/index.mjs': [['\ufffc', '\\ufffc']],
}

export function exeName(platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  return `proxy-${platform}-${arch}${platform === 'win32' ? '.exe' : ''}`
}

/**
 * Why this node cannot make an executable, or null when it can: SEA assets need node 20.12, and a node
 * built without SEA support (some distributions') lacks the fuse postject flips.
 */
export function seaUnsupported(): string | null {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  if (major < 20 || (major === 20 && minor < 12)) return `node ${process.versions.node} has no SEA assets (node 20.12 or later)`
  if (!['linux', 'darwin', 'win32'].includes(process.platform)) return `node has no single executables on ${process.platform}`
  if (!readFileSync(process.execPath).includes(SEA_FUSE)) return `${process.execPath} was built without single executable support`
  return null
}

/**
 * Whether node applies the SEA configuration's `execArgv` (node 22.20 and 24.7 on): the V8 flags the
 * executable runs with, which its code cache must be made with.
 */
export function seaAppliesExecArgv(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  return major >= 25 || (major === 24 && minor >= 7) || (major === 22 && minor >= 20)
}

function swaps(): Plugin {
  const sources = new Map(Object.entries(SWAPPED_SOURCES).map(([from, to]) => [path.join(root, from), path.join(seaDir, to)]))
  const packages = new Map(Object.entries(SWAPPED_PACKAGES).map(([name, to]) => [name, path.join(seaDir, to)]))
  return {
    name: 'sea-swaps',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const swap = packages.get(args.path)
        // the swapped module itself imports the real package: better-sqlite3 13 where this node loads it
        if (swap === args.importer && args.path === 'better-sqlite3' && sqliteNapi) return { path: require.resolve(SQLITE_NAPI_PACKAGE) }
        if (swap) return swap === args.importer ? undefined : { path: swap }
        if (!args.path.startsWith('.')) return undefined
        const resolved = path.resolve(args.resolveDir, args.path)
        const target = sources.get(resolved) ?? sources.get(resolved.replace(/\.js$/, '.ts'))
        return target ? { path: target } : undefined
      })
      for (const [file, replacements] of Object.entries(PATCHES)) {
        const filter = new RegExp(`node_modules/${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`)
        b.onLoad({ filter }, (args) => {
          let text = readFileSync(args.path, 'utf8')
          for (const [from, to] of replacements) {
            if (!text.includes(from)) throw new Error(`${file} no longer contains ${JSON.stringify(from)}: update PATCHES in build/exe.ts`)
            text = text.replace(from, to)
          }
          return { contents: text, loader: 'js' }
        })
      }
    },
  }
}

async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    jsx: 'automatic',
    // whitespace and syntax only: names stay readable in stack traces
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    // pg's optional native client, never installed
    external: ['pg-native'],
    plugins: [swaps()],
    logLevel: 'warning',
    // import.meta.url is only read by modules swapped out above, and by yoga's loader, which needs no path
    logOverride: { 'empty-import-meta': 'silent' },
  })
}

/** Whether the executable carries better-sqlite3 13 (what this node loads: src/store/sqlite-driver.ts) rather than 12. */
const sqliteNapi = sqlitePackage() === SQLITE_NAPI_PACKAGE

/** better-sqlite3's addon: 13's prebuilt one for this platform, or the one npm compiled for 12. */
function sqliteAddon(): string {
  if (!sqliteNapi) return path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node')
  const target = `${process.platform === 'linux' && !isGlibc() ? 'linuxmusl' : process.platform}-${process.arch}`
  return path.join(path.dirname(require.resolve(SQLITE_NAPI_PACKAGE)), '..', 'prebuilds', `${target}.node`)
}

function isGlibc(): boolean {
  return Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime)
}

/** The keyring addon for this platform, when its optional package is installed. */
function keyringAddon(): string | null {
  const scope = path.join(root, 'node_modules', '@napi-rs')
  if (!existsSync(scope)) return null
  const glibc = process.platform === 'linux' && isGlibc()
  const prefix = `keyring-${process.platform}-${process.arch}`
  for (const dir of readdirSync(scope).filter((d) => d.startsWith(prefix))) {
    if (process.platform === 'linux' && dir.includes('musl') === glibc) continue
    const file = readdirSync(path.join(scope, dir)).find((f) => f.endsWith('.node'))
    if (file) return path.join(scope, dir, file)
  }
  return null
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

/**
 * The executable reads the CLI bundle as Latin-1, which V8 then keeps one byte a character: any other
 * character would be read wrong, so the build stops at one (a PATCHES entry can write it as an escape).
 */
function asciiOnly(file: string): void {
  const text = readFileSync(file, 'latin1')
  const at = text.search(/[^\x00-\x7f]/)
  if (at >= 0) throw new Error(`${file} has a character outside ASCII at ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 60), at + 20))}`)
}

/** V8's code cache for the CLI bundle, made by this node started with the V8 flags the executable runs with. */
function writeCodeCache(cli: string, out: string, flags: string[]): void {
  const { NODE_OPTIONS: _ignored, ...env } = process.env
  execFileSync(process.execPath, [...flags, '--import', 'tsx', path.join(seaDir, 'write-code-cache.ts'), cli, out], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
}

export async function buildExe(): Promise<string> {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  const main = path.join(outDir, 'main.cjs')
  const cli = path.join(outDir, CLI_ASSET)
  const cliCache = path.join(outDir, CLI_CACHE_ASSET)
  const thread = path.join(outDir, 'audit-thread.cjs')
  await bundle(path.join(seaDir, 'main.ts'), main)
  await bundle(path.join(seaDir, 'entry.ts'), cli)
  asciiOnly(cli)
  await bundle(path.join(root, 'src', 'store', 'audit-thread.js'), thread)
  // serve's V8 flags (src/cli/respawn.ts) for every command: they cost nothing to a short one, and the
  // executable never starts a second process. Node 20 ignores execArgv, and its executables run with
  // V8's defaults. The one-CPU flag depends on the machine that runs the executable, not the one
  // building it, so it is left out.
  const execArgv = serveV8Flags(2)
  writeCodeCache(cli, cliCache, seaAppliesExecArgv() ? execArgv : [])

  const onDisk: Record<string, string> = {
    'better_sqlite3.node': sqliteAddon(),
    'audit-thread.cjs': thread,
  }
  const keyring = keyringAddon()
  if (keyring) onDisk['keyring.node'] = keyring
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }
  const manifest = {
    version,
    files: Object.fromEntries(Object.entries(onDisk).map(([name, file]) => [name, { sha256: sha256(file), size: statSync(file).size }])),
  }
  const manifestFile = path.join(outDir, MANIFEST_ASSET)
  writeFileSync(manifestFile, JSON.stringify(manifest))

  const blob = path.join(outDir, 'proxy.blob')
  const config = path.join(outDir, 'sea-config.json')
  writeFileSync(
    config,
    JSON.stringify({
      main,
      output: blob,
      disableExperimentalSEAWarning: true,
      // the main script is a few lines: a code cache saves it nothing (the CLI's is an asset)
      useCodeCache: false,
      execArgv,
      assets: { ...onDisk, [MANIFEST_ASSET]: manifestFile, [CLI_ASSET]: cli, [CLI_CACHE_ASSET]: cliCache },
    }),
  )
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'pipe', 'pipe'] })

  const exe = path.join(root, 'dist', exeName())
  rmSync(exe, { force: true })
  copyFileSync(process.execPath, exe)
  chmodSync(exe, 0o755)
  if (process.platform === 'darwin') execFileSync('codesign', ['--remove-signature', exe])
  const { inject } = require('postject') as { inject: (file: string, name: string, data: Buffer, options: object) => Promise<void> }
  // postject's ELF reader warns about every note section of node's binary it cannot name; harmless noise
  const warn = console.warn
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes("Can't find string offset for section name")) warn(...args)
  }
  try {
    await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE, ...(process.platform === 'darwin' ? { machoSegmentName: 'NODE_SEA' } : {}) })
  } finally {
    console.warn = warn
  }
  if (process.platform === 'darwin') execFileSync('codesign', ['--sign', '-', exe])
  return exe
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const started = Date.now()
  const exe = await buildExe()
  console.log(`${path.relative(root, exe)}: ${(statSync(exe).size / 2 ** 20).toFixed(1)} MB, built in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}
