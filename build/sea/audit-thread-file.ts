/** src/store/audit-thread-file.ts in the executable: the thread's script, bundled by the build, from the cache. */
import { assetFile } from './runtime.js'

export const AUDIT_THREAD_ASSET = 'audit-thread.cjs'

export function auditThreadFile(): URL | string {
  return assetFile(AUDIT_THREAD_ASSET)
}
