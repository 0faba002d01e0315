/** The `manifest.json` asset the build writes (build/exe.ts): the version, and the files written to disk. */
import { getAsset } from 'node:sea'

export interface SeaManifest {
  version: string
  /** asset name → its sha256 (hex) and size, for the files written to disk */
  files: Record<string, { sha256: string; size: number }>
}

export const MANIFEST_ASSET = 'manifest.json'

let manifest: SeaManifest | undefined
export function seaManifest(): SeaManifest {
  manifest ??= JSON.parse(getAsset(MANIFEST_ASSET, 'utf8')) as SeaManifest
  return manifest
}
