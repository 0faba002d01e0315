/**
 * The config snapshot: everything the hot path needs, decrypted and indexed, held in memory. The server
 * never reads SQLite per request; it swaps in a new snapshot when the store changes.
 */
import { GLOBAL_POLICY, type Budgets, type ClientConfig, type ConfigSnapshot, type ProviderConfig, type RouteConfig, type TeamConfig } from '../core/config.js'
import { PriceBook } from '../core/prices.js'
import { storedPrice } from './repos/prices.js'
import { withPolicyDefaults, type PolicyDocument } from '../core/policy-schema.js'
import { clientWindows } from '../core/windows.js'
import type { Store } from './db.js'
import { loadCircuitSnapshot } from './repos/circuits.js'
import { compilePatterns } from './route-patterns.js'
import { persistedKeyHealth } from './repos/key-health.js'

export type { KeyConfig, ProviderConfig, ClientConfig, RouteTarget, RouteConfig, ConfigSnapshot } from '../core/config.js'
export { GLOBAL_POLICY } from '../core/config.js'

/**
 * `previous` is the snapshot this process runs on: a secret the master key ring cannot open keeps the
 * plaintext it had there (same key id), so a master-key rotation done elsewhere never takes keys away
 * from a running server that has not been given the new ring yet.
 */
export async function loadSnapshot(store: Store, previous?: ConfigSnapshot): Promise<ConfigSnapshot> {
  const snapshot = await readSnapshot(store, previous)
  // A secret the ring cannot open usually means the master key was rotated by another process: read the
  // key (ring) again from where it lives, and load once more if it changed.
  if (snapshot.undecryptable > 0 && (await store.refreshMasterKey())) return (await readSnapshot(store, previous)).snapshot
  return snapshot.snapshot
}

async function readSnapshot(store: Store, previous: ConfigSnapshot | undefined): Promise<{ snapshot: ConfigSnapshot; undecryptable: number }> {
  const { db } = store
  // One read transaction, so the CLI cannot change the store between the queries of one snapshot.
  return db.transaction().setAccessMode('read only').execute(async (tx) => {
    const [providerRows, keyRows, clientRows, routeRows, targetRows, policyRows, priceRows, teamRows, budgetRows, outputCapRow] = await Promise.all([
      tx.selectFrom('providers').selectAll().execute(),
      tx.selectFrom('provider_keys').selectAll().where('state', '!=', 'retired').orderBy('priority').orderBy('id').execute(),
      tx.selectFrom('clients').selectAll().execute(),
      tx.selectFrom('routes').selectAll().execute(),
      tx.selectFrom('route_targets').selectAll().orderBy('route_id').orderBy('position').execute(),
      tx.selectFrom('policies').selectAll().execute(),
      tx.selectFrom('prices').selectAll().execute(),
      tx.selectFrom('teams').selectAll().execute(),
      tx.selectFrom('budgets').selectAll().execute(),
      tx.selectFrom('meta').select('value').where('key', '=', 'budget_output_cap').executeTakeFirst(),
    ])
    // budgets by level and subject id ('client:3'), in micro-dollars
    const budgets = new Map<string, Budgets>()
    for (const b of budgetRows) {
      const key = `${b.level}:${b.subject_id}`
      const entry = budgets.get(key) ?? { daily: null, monthly: null }
      if (b.period === 'day') entry.daily = Number(b.limit_micro)
      else entry.monthly = Number(b.limit_micro)
      budgets.set(key, entry)
    }
    const budgetsOf = (level: string, id: number): Budgets | undefined => budgets.get(`${level}:${id}`)
    const teamsById = new Map<number, TeamConfig>()
    for (const t of teamRows) {
      teamsById.set(t.id, { id: t.id, name: t.name, limits: clientWindows(t.rpm, t.tpm, t.limits), dailyTokens: t.daily_tokens, monthlyTokens: t.monthly_tokens, budgets: budgetsOf('team', t.id) ?? NO_BUDGETS })
    }
    const problems: string[] = []
    let undecryptable = 0
    const providersById = new Map<number, ProviderConfig>()
    const providers = new Map<string, ProviderConfig>()
    for (const p of providerRows) {
      const config: ProviderConfig = {
        id: p.id,
        name: p.name,
        type: p.type,
        baseUrl: p.base_url,
        settings: JSON.parse(p.settings) as Record<string, unknown>,
        enabled: p.enabled === 1,
        keys: [],
      }
      const providerBudgets = budgetsOf('provider', p.id)
      if (providerBudgets) config.budgets = providerBudgets
      providersById.set(p.id, config)
      providers.set(p.name, config)
    }
    for (const k of keyRows) {
      const provider = providersById.get(k.provider_id)
      if (!provider) continue
      let secret: string
      try {
        secret = store.fernet.decryptString(k.secret)
      } catch {
        undecryptable++
        const known = previous?.providers.get(provider.name)?.keys.find((old) => old.id === k.id)
        if (!known) {
          problems.push(`Key '${k.label}' of provider '${provider.name}' cannot be decrypted with the current master key; it is skipped.`)
          continue
        }
        problems.push(`Key '${k.label}' of provider '${provider.name}' was re-encrypted under a master key this process does not have; it keeps the secret it decrypted before. Give this instance the new master key ring.`)
        secret = known.secret
      }
      provider.keys.push({ id: k.id, label: k.label, secret, priority: k.priority, weight: k.weight, state: k.state as 'active' | 'disabled', health: persistedKeyHealth(k) })
    }
    const clientsByHash = new Map<string, ClientConfig>()
    for (const c of clientRows) {
      const client: ClientConfig = {
        id: c.id,
        name: c.name,
        role: c.role,
        models: c.models ? new Set(JSON.parse(c.models) as string[]) : null,
        expiresAt: c.expires_at ? Date.parse(c.expires_at) : null,
        revoked: c.revoked_at !== null,
        limits: clientWindows(c.rpm, c.tpm, c.limits),
        dailyTokens: c.daily_tokens,
        monthlyTokens: c.monthly_tokens,
        capture: c.capture === 1,
        policy: c.policy,
        team: c.team_id === null ? null : (teamsById.get(c.team_id) ?? null),
      }
      const clientBudgets = budgetsOf('client', c.id)
      if (clientBudgets) client.budgets = clientBudgets
      clientsByHash.set(c.key_hash, client)
    }
    const routes = new Map<string, RouteConfig>()
    for (const r of routeRows) {
      routes.set(r.model, { model: r.model, policy: r.policy, targets: [], createdAt: Math.floor(Date.parse(r.created_at) / 1000) })
    }
    const routeModelById = new Map(routeRows.map((r) => [r.id, r.model]))
    for (const t of targetRows) {
      const route = routes.get(routeModelById.get(t.route_id) ?? '')
      const provider = providersById.get(t.provider_id)
      if (route && provider) route.targets.push({ provider, upstreamModel: t.upstream_model, weight: t.weight })
    }
    const policies = new Map<string, PolicyDocument>(policyRows.map((p) => [p.name, JSON.parse(p.document) as PolicyDocument]))
    const snapshot: ConfigSnapshot = {
      loadedAt: Date.now(),
      providers,
      clientsByHash,
      routes,
      patterns: compilePatterns(routes.values()),
      policies,
      globalPolicy: withPolicyDefaults(policies.get(GLOBAL_POLICY)),
      problems,
      circuits: await loadCircuitSnapshot(tx),
      prices: new PriceBook(priceRows.map(storedPrice)),
      teams: new Map([...teamsById.values()].map((t) => [t.name, t])),
    }
    const globalBudgets = budgetsOf('global', 0)
    if (globalBudgets) snapshot.globalBudgets = globalBudgets
    if (outputCapRow && Number(outputCapRow.value) > 0) snapshot.budgetOutputCap = Number(outputCapRow.value)
    return { snapshot, undecryptable }
  })
}

const NO_BUDGETS: Budgets = Object.freeze({ daily: null, monthly: null }) as Budgets

