import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { openStore, type Store } from '../store/db.js'
import { redactUrl } from '../store/dialect.js'
import { credentialPath, defaultKeychain, keyFingerprint, masterKeyPath, resolveMasterKey, type MasterKey } from '../store/master-key.js'
import { secretsPerKey } from '../store/master-rotation.js'
import { appliedMigrations, latestMigration } from '../store/migrate.js'
import { resolveDataDir, STORE_FILE } from '../store/paths.js'
import { loadSnapshot } from '../store/snapshot.js'
import { withStore, type CliDeps } from './context.js'
import { testProvider } from './providers-test.js'

export interface Check {
  name: string
  ok: boolean
  detail: string
  /** a warning does not fail the run: something to know, nothing broken */
  warn?: boolean
}

/** Extra checks other parts contribute (provider reachability per key), run against the open store. */
export type ExtraChecks = (ctx: { dataDir: string; databaseUrl?: string | null; deps: CliDeps }) => Promise<Check[]>

/**
 * Every provider key, checked against its upstream the way `proxy providers test` does (providers in
 * parallel, keys one at a time): one PASS/FAIL line per key, never a secret. A provider that cannot be
 * tested at all fails too, unless no route uses it (then it is a warning: no traffic depends on it).
 */
export const providerReachability: ExtraChecks = async ({ dataDir, databaseUrl, deps }) => {
  const snapshot = await withStore(deps, { dataDir, databaseUrl: databaseUrl ?? undefined }, (store) => loadSnapshot(store))
  const routed = new Set([...snapshot.routes.values()].flatMap((r) => r.targets.map((t) => t.provider.name)))
  const providers = [...snapshot.providers.values()].sort((a, b) => a.name.localeCompare(b.name))
  const perProvider = await Promise.all(
    providers.map(async (p): Promise<Check[]> => {
      if (!p.enabled) return [{ name: `provider ${p.name}`, ok: false, warn: true, detail: 'disabled; not checked' }]
      try {
        const report = await testProvider(snapshot, p.name, { timeoutMs: 10_000 })
        const how = report.probe.kind === 'models' ? 'listed models' : `chat to ${report.probe.model}`
        return report.results.map((r) => ({
          name: `key ${p.name}/${r.key ?? '(none)'}`,
          ok: r.ok,
          detail: r.ok ? `${how}: ${r.detail ?? 'ok'} in ${r.latencyMs} ms` : `${[r.upstreamStatus ?? r.status, r.code].filter((x) => x !== undefined && x !== null).join(' ')}: ${r.message ?? 'failed'} (${r.latencyMs} ms)`.replace(/^: /, ''),
        }))
      } catch (e) {
        const unused = !routed.has(p.name)
        return [{ name: `provider ${p.name}`, ok: false, warn: unused, detail: `${(e as Error).message}${unused ? ' (no route uses it)' : ''}` }]
      }
    }),
  )
  return perProvider.flat()
}

export async function runChecks(deps: CliDeps, dataDir: string, databaseUrl: string | null = null): Promise<Check[]> {
  const checks: Check[] = []
  if (!existsSync(dataDir)) {
    checks.push({ name: 'data directory', ok: false, detail: `${dataDir} does not exist; any proxy command creates it (e.g. 'proxy serve --demo').` })
    return checks
  }
  const dirMode = statSync(dataDir).mode & 0o777
  checks.push({ name: 'data directory', ok: (dirMode & 0o077) === 0, detail: `${dataDir} mode ${dirMode.toString(8)}${dirMode & 0o077 ? ` (others can read it: chmod 700 ${dataDir})` : ''}` })
  const file = path.join(dataDir, STORE_FILE)
  if (!databaseUrl && existsSync(file)) {
    const mode = statSync(file).mode & 0o777
    checks.push({ name: 'store file', ok: (mode & 0o077) === 0, detail: `${file} mode ${mode.toString(8)}${mode & 0o077 ? ` (chmod 600 ${file})` : ''}` })
  }

  try {
    const store = await openStore({ dataDir, databaseUrl, env: deps.env, keychain: deps.keychain })
    try {
      const applied = await appliedMigrations(store.db)
      checks.push({ name: 'store and migrations', ok: applied.at(-1) === latestMigration(), detail: `${applied.length} migration(s) applied, latest ${applied.at(-1) ?? 'none'}` })
      checks.push(...(await masterKeyChecks(deps, store.masterKey, dataDir)))
      checks.push(...(await ringChecks(store)))
      checks.push(await pricesCheck(store.db))
    } finally {
      await store.close()
    }
  } catch (e) {
    checks.push({ name: 'store and master key', ok: false, detail: (e as Error).message })
    checks.push(await keychainCheck(deps))
  }

  const redisUrl = deps.env.PROXY_REDIS_URL
  if (redisUrl) checks.push(await checkRedis(redisUrl))
  return checks
}

/**
 * Where the master key comes from, and what deserves a warning about it: a key file beside the store
 * when no keychain could hold it (a copy of the data directory then holds both), or a leftover key file
 * that is not the key PROXY_MASTER_KEY gives (without the variable, the store would not open).
 */
async function masterKeyChecks(deps: CliDeps, masterKey: MasterKey, dataDir: string): Promise<Check[]> {
  const file = masterKeyPath(dataDir)
  if (masterKey.source === 'env') {
    const checks: Check[] = [
      { name: 'master key', ok: true, detail: 'from environment variable PROXY_MASTER_KEY; it decrypts this store' },
      { name: 'OS keychain', ok: true, detail: 'not used: the master key comes from PROXY_MASTER_KEY' },
    ]
    if (existsSync(file)) {
      const other = await resolveMasterKey({ dataDir, env: { PROXY_KEYCHAIN: 'off' }, keychain: null, create: false }).then(
        (k) => (k.key === masterKey.key ? null : `${file} holds another key than PROXY_MASTER_KEY: without the variable this store would not open. Remove the file, or keep PROXY_MASTER_KEY set wherever proxy runs.`),
        (e: Error) => `${e.message} (PROXY_MASTER_KEY is used instead)`,
      )
      if (other) checks.push({ name: 'master key file', ok: false, warn: true, detail: other })
    }
    return checks
  }
  if (masterKey.source === 'credential') {
    return [
      { name: 'master key', ok: true, detail: `from the systemd credential ${credentialPath(deps.env) ?? 'proxy-master-key'}; it decrypts this store` },
      { name: 'OS keychain', ok: true, detail: 'not used: the master key comes from a systemd credential' },
    ]
  }
  if (masterKey.source === 'keychain') {
    return [
      { name: 'master key', ok: true, detail: `from the OS keychain (${masterKey.keychain.detail}); it decrypts this store` },
      { name: 'OS keychain', ok: true, detail: `available (${masterKey.keychain.detail}); it holds the master key` },
    ]
  }
  const keyFile: Check = { name: 'master key', ok: true, detail: `from the key file ${file}; it decrypts this store` }
  if (masterKey.keychain.available) return [keyFile, { name: 'OS keychain', ok: true, detail: `available (${masterKey.keychain.detail}), but the master key is in ${file}, made when the keychain was not in use` }]
  if (deps.env.PROXY_KEYCHAIN?.trim().toLowerCase() === 'off') return [keyFile, { name: 'OS keychain', ok: true, detail: `turned off by PROXY_KEYCHAIN=off; the master key is in ${file}` }]
  return [
    keyFile,
    {
      name: 'OS keychain',
      ok: false,
      warn: true,
      detail: `not available (${masterKey.keychain.detail}), so the master key is kept in ${file} beside the store, and a copy of the data directory holds both. To keep them apart, set PROXY_MASTER_KEY (e.g. from an EnvironmentFile) instead.`,
    },
  ]
}

/**
 * For each key of the ring, how many stored secrets it opens (the first key that does), so the operator
 * knows when an old key can be dropped. Keys are named by a fingerprint, never shown.
 */
async function ringChecks(store: Store): Promise<Check[]> {
  const { perKey, none } = await secretsPerKey(store)
  const { keys } = store.masterKey
  const checks: Check[] = perKey.map((count, i) => {
    const what = `${i === 0 ? 'newest, encrypts new secrets' : 'older'} (fingerprint ${keyFingerprint(keys[i]!)}): opens ${count} stored secret(s)`
    if (i === 0) return { name: `master key 1 of ${keys.length}`, ok: true, detail: what }
    const advice =
      count === 0
        ? '; no secret needs it any more: drop it from the ring once every instance has the newer key'
        : `; still needed: 'proxy secrets rotate-master' re-encrypts them (--new-key-from-env VAR with the newest key to keep it)`
    return { name: `master key ${i + 1} of ${keys.length}`, ok: true, detail: what + advice }
  })
  if (none > 0) checks.push({ name: 'stored secrets', ok: false, detail: `${none} upstream key(s) open with no key of the ring, so the server skips them: add the key they were written with to the ring, or remove them` })
  return checks
}

/** The keychain on its own, when the store (and so the master key) could not be opened. */
async function keychainCheck(deps: CliDeps): Promise<Check> {
  if (deps.env.PROXY_MASTER_KEY?.trim()) return { name: 'OS keychain', ok: true, detail: 'not used: the master key comes from PROXY_MASTER_KEY' }
  const keychain = deps.keychain === undefined ? await defaultKeychain(deps.env) : deps.keychain
  const status = keychain ? await keychain.probe() : { available: false, detail: deps.env.PROXY_KEYCHAIN === 'off' ? 'disabled by PROXY_KEYCHAIN=off' : 'no keyring module' }
  return { name: 'OS keychain', ok: status.available, warn: !status.available, detail: status.available ? 'available' : `not available (${status.detail})` }
}

async function checkRedis(url: string): Promise<Check> {
  const { Redis } = await import('ioredis')
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, enableOfflineQueue: false, retryStrategy: () => null })
  let lastError: Error | null = null
  redis.on('error', (e: Error) => (lastError = e))
  const started = Date.now()
  try {
    await redis.connect()
    const pong = await redis.ping()
    return { name: 'redis', ok: pong === 'PONG', detail: `${redactUrl(url, 'the configured Redis URL')} answered in ${Date.now() - started} ms` }
  } catch (e) {
    return { name: 'redis', ok: false, detail: `${redactUrl(url, 'the configured Redis URL')}: ${(lastError ?? (e as Error)).message}` }
  } finally {
    redis.disconnect()
  }
}

/** Routed models without a price count as $0 in usage and budgets: a warning naming them. */
async function pricesCheck(db: Store['db']): Promise<Check> {
  const { unpricedTargets } = await import('./prices-report.js')
  const missing = await unpricedTargets(db)
  if (missing.length === 0) return { name: 'prices', ok: true, detail: 'every routed model has a price' }
  const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '')
  return { name: 'prices', ok: false, warn: true, detail: `no price for ${shown}: their requests count as $0 in usage and budgets. Set one with 'proxy prices set MODEL --provider P --input N --output N'.` }
}
