/**
 * Where the audit writer thread's script is: audit-thread.js beside this module, in src/ (tests) and
 * dist/src/ alike. A module of its own because the executable's bundle swaps it for the script it
 * carries as an asset (build/sea/).
 */
export function auditThreadFile(): URL | string {
  return new URL('./audit-thread.js', import.meta.url)
}
