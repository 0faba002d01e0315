/**
 * The executable's runtime glue: reads the files the build embedded as SEA assets (build/exe.ts) and,
 * for those that must exist on disk (native addons, the audit thread's script), writes them once to a
 * cache folder named by their content's hash, so a new build never loads an old file and an unchanged
 * one is not written again. Nothing here is loaded outside the executable.
 */
import { lstatSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { getAsset } from 'node:sea'
import { getEnvironmentData, setEnvironmentData } from 'node:worker_threads'
import { seaManifest } from './manifest.js'

/**
 * The folders tried for the cache, in order: $XDG_CACHE_HOME/proxy (the systemd unit points it at the
 * service's CacheDirectory), ~/.cache/proxy, then for a user without a writable home a folder of this
 * user's own in the shared temporary folder (see privateTempFolder).
 */
function cacheFolders(env: NodeJS.ProcessEnv): (() => string)[] {
  const home = env.HOME || homedir()
  const own = [env.XDG_CACHE_HOME, home && path.join(home, '.cache')].filter((root): root is string => Boolean(root) && path.isAbsolute(root!))
  return [...own.map((root) => () => path.join(root, 'proxy')), privateTempFolder]
}

/**
 * In the shared temporary folder anyone may create a path first, and an addon found there is loaded
 * into this process: the folder is named for this user and used only when it is a real directory that
 * this user owns and no one else may write to.
 */
function privateTempFolder(): string {
  const uid = process.getuid?.()
  const dir = path.join(tmpdir(), `proxy-${uid ?? 'user'}`)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const st = lstatSync(dir)
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a private folder of this user`)
  }
  return dir
}

// A worker thread gets the paths its parent already wrote through the environment data it inherits,
// instead of reading the assets again.
const ENV_DATA_PREFIX = 'proxy-sea-file:'

/** The path of embedded file `name` on disk, written to the cache on first use. */
export function assetFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const known = getEnvironmentData(ENV_DATA_PREFIX + name)
  if (typeof known === 'string') return known
  const entry = seaManifest().files[name]
  if (!entry) throw new Error(`the executable carries no ${name}`)
  const failures: string[] = []
  for (const folder of cacheFolders(env)) {
    try {
      const dir = path.join(folder(), 'native', entry.sha256)
      const file = path.join(dir, name)
      if (!sameSize(file, entry.size)) write(dir, file, name)
      setEnvironmentData(ENV_DATA_PREFIX + name, file)
      return file
    } catch (e) {
      failures.push((e as Error).message)
    }
  }
  throw new Error(`cannot write ${name} to a cache folder (set XDG_CACHE_HOME to a writable one): ${failures.join('; ')}`)
}

function sameSize(file: string, size: number): boolean {
  try {
    return statSync(file).size === size
  } catch {
    return false
  }
}

/** Writes under a temporary name and renames, so two first runs at once never load a half-written file. */
function write(dir: string, file: string, name: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const partial = `${file}.${process.pid}.partial`
  try {
    writeFileSync(partial, new Uint8Array(getAsset(name)), { mode: 0o700 })
    renameSync(partial, file)
  } finally {
    rmSync(partial, { force: true })
  }
}

/** Loads an embedded native addon (a `.node` file) and returns its exports. */
export function loadNativeAddon(name: string): unknown {
  const module = { exports: {} }
  process.dlopen(module, assetFile(name))
  return module.exports
}
