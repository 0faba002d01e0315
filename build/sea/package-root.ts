/** src/cli/package-root.ts in the executable: there is no package folder, and the build wrote the version in. */
import { seaManifest } from './manifest.js'

export function packageRoot(): string {
  throw new Error('the proxy executable has no package folder')
}

export function packageVersion(): string {
  return seaManifest().version
}
