import { Command } from 'commander'
import { resolveDataDir } from '../store/paths.js'
import { CliError, dataDirOption, jsonOption, out, printJson, resolveDatabaseUrl, type CliDeps } from './context.js'
import type { ExtraChecks } from './doctor-checks.js'

/** `proxy doctor`; the checks (store, keychain, Redis, providers) are loaded only when it runs. */
export function doctorCommand(deps: CliDeps, extra?: ExtraChecks[]): Command {
  return dataDirOption(jsonOption(new Command('doctor')))
    .description('check the data dir, store, master key, Redis and every provider key; non-zero exit on any failure')
    .option('--skip-providers', 'do not contact upstream providers')
    .action(async (opts: { dataDir?: string; databaseUrl?: string; json?: boolean; skipProviders?: boolean }) => {
      const { providerReachability, runChecks } = await import('./doctor-checks.js')
      const dataDir = resolveDataDir(opts.dataDir, deps.env)
      const databaseUrl = resolveDatabaseUrl(opts.databaseUrl, deps.env)
      const checks = await runChecks(deps, dataDir, databaseUrl)
      const storeOk = checks.every((c) => c.ok || c.warn)
      if (storeOk && !opts.skipProviders) for (const more of extra ?? [providerReachability]) checks.push(...(await more({ dataDir, databaseUrl, deps })))
      const failed = checks.filter((c) => !c.ok && !c.warn)
      if (opts.json) printJson(deps, { ok: failed.length === 0, checks })
      else {
        for (const c of checks) out(deps, `${c.ok ? 'PASS' : c.warn ? 'WARN' : 'FAIL'}  ${c.name.padEnd(22)} ${c.detail}`)
        if (failed.length === 0) out(deps, '\nAll checks passed.')
      }
      if (failed.length > 0) throw new CliError(`${failed.length} check(s) failed.`)
    })
}
