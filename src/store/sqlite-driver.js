// @ts-check
/**
 * The one place the store loads better-sqlite3. Version 12 is the newest that runs on Node 20, but on
 * Node 24.19 and later it aborts the process (a failed `env != nullptr` check) when the garbage
 * collector finalizes one of its statements at the wrong moment: its classes are `node::ObjectWrap`s,
 * whose destructor Node 24 changed. Version 13 is built on N-API and has no such problem, but needs
 * Node 22. It is an optional dependency under another name, which npm skips on Node 20: where it is
 * installed and node is 22 or newer, it is the one loaded.
 *
 * Every connection a process opens must come from here: two copies of SQLite in one process do not see
 * each other's file locks (POSIX locks belong to the process, and each copy tracks its own).
 * Plain JavaScript so the writer thread (sqlite-thread.js) can import it as well as the store.
 */
import { createRequire } from 'node:module'

export const SQLITE_NAPI_PACKAGE = 'better-sqlite3-napi'
const require = createRequire(import.meta.url)

/**
 * The package this node loads: better-sqlite3 13 (installed as SQLITE_NAPI_PACKAGE) on node 22+, else 12.
 * @param {string} [nodeVersion]
 * @param {(name: string) => boolean} [installed]
 * @returns {string}
 */
export function sqlitePackage(nodeVersion = process.versions.node, installed = isInstalled) {
  return Number(nodeVersion.split('.')[0]) >= 22 && installed(SQLITE_NAPI_PACKAGE) ? SQLITE_NAPI_PACKAGE : 'better-sqlite3'
}

/** @param {string} name */
function isInstalled(name) {
  try {
    require.resolve(name)
    return true
  } catch {
    return false
  }
}

/**
 * better-sqlite3's Database class, from the package sqlitePackage() names; both share one API.
 * @type {typeof import('better-sqlite3')}
 */
export const SQLite = require(sqlitePackage())
