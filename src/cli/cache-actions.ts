/** What `proxy cache stats|clear` do (the command is declared in cache.ts). */
import { AdminApiError, adminTarget, createAdminClient } from './admin-client.js'
import { CliError, out, printJson, type CliDeps } from './context.js'

export interface LiveFlags {
  url?: string
  adminKey?: string
  dataDir?: string
  json?: boolean
}

export async function cacheStats(deps: CliDeps, flags: LiveFlags): Promise<void> {
  const stats = await asCli(createAdminClient(adminTarget(flags, deps.env)).cacheStats())
  if (flags.json) return printJson(deps, stats)
  const where = stats.backend === 'redis' ? `Redis (keys under ${stats.prefix})${stats.available ? '' : ', unreachable: requests bypass the cache'}` : 'memory'
  out(deps, `${stats.entries} answer(s), ${formatBytes(stats.bytes)}, in ${where}.`)
}

export async function cacheClear(deps: CliDeps, flags: LiveFlags & { model?: string }): Promise<void> {
  const result = await asCli(createAdminClient(adminTarget(flags, deps.env)).cacheClear(flags.model))
  if (flags.json) return printJson(deps, result)
  out(deps, `Removed ${result.cleared} cached answer(s)${flags.model ? ` for model '${flags.model}'` : ''}.`)
}

/** An admin API failure is a plain CLI error (its message says what to do), not a stack trace. */
async function asCli<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (e) {
    throw e instanceof AdminApiError ? new CliError(e.message) : e
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
