/**
 * better-sqlite3 as the executable's bundle sees it: the same class, given the addon the executable
 * carries (better-sqlite3 takes it as its `nativeBinding` option) instead of looking for build/Release.
 */
import Database from 'better-sqlite3'
import { loadNativeAddon } from './runtime.js'

export const ADDON_ASSET = 'better_sqlite3.node'
let addon: object | undefined

class SeaDatabase extends Database {
  constructor(filename?: string | Buffer, options: Database.Options = {}) {
    addon ??= loadNativeAddon(ADDON_ASSET) as object
    super(filename, { nativeBinding: addon as unknown as string, ...options })
  }
}

export default SeaDatabase
