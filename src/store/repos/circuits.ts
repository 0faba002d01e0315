/**
 * Circuit breaker state in the store. The server writes `circuit_states` behind (batched, never on the
 * request path) so open circuits survive a restart; `proxy circuit` writes `circuit_overrides`, which
 * the server picks up through its normal snapshot reload.
 */
import type { Kysely, Transaction } from 'kysely'
import type { WriteStatement } from '../audit-batch.js'
import { writeStatement } from './write-statement.js'
import { invalidRequest, notFound } from '../../core/errors.js'
import { nowIso } from '../time.js'
import type { CircuitOverrideMode, CircuitStateName, Database } from '../schema.js'
import { getProvider } from './providers.js'

export type CircuitAction = 'open' | 'close' | 'reset'

export const providerScope = (providerId: number): string => `p:${providerId}`
export const keyScope = (keyId: number): string => `k:${keyId}`

export type { OverrideConfig, PersistedCircuit, CircuitSnapshot } from '../../core/config.js'
import type { CircuitSnapshot } from '../../core/config.js'

export const EMPTY_CIRCUITS: CircuitSnapshot = { overrides: new Map(), states: new Map() }

export async function loadCircuitSnapshot(db: Kysely<Database> | Transaction<Database>): Promise<CircuitSnapshot> {
  const [overrideRows, stateRows] = await Promise.all([
    db.selectFrom('circuit_overrides').select(['scope', 'mode', 'epoch']).execute(),
    db.selectFrom('circuit_states').select(['scope', 'state', 'open_until']).execute(),
  ])
  return {
    overrides: new Map(overrideRows.map((r) => [r.scope, { mode: r.mode, epoch: r.epoch }])),
    states: new Map(stateRows.map((r) => [r.scope, { state: r.state, openUntil: r.open_until ? Date.parse(r.open_until) : null }])),
  }
}

/** One circuit state change, as the server's write-behind buffer hands it over. */
export interface CircuitStateWrite {
  scope: string
  providerId: number
  keyId: number | null
  state: CircuitStateName
  openUntil: number | null
  at: number
}

/**
 * The statements that record circuit state changes, compiled for the store writer. A change for a
 * provider or key deleted meanwhile breaks its foreign key and is skipped: nothing to remember.
 */
export function circuitStateStatements(db: Kysely<Database>, writes: Iterable<CircuitStateWrite>): WriteStatement[] {
  const out: WriteStatement[] = []
  for (const w of writes) {
    const values = { state: w.state, open_until: w.openUntil === null ? null : new Date(w.openUntil).toISOString(), updated_at: new Date(w.at).toISOString() }
    const upsert = db
      .insertInto('circuit_states')
      .values({ scope: w.scope, provider_id: w.providerId, key_id: w.keyId, ...values })
      .onConflict((oc) => oc.column('scope').doUpdateSet(values))
    out.push(writeStatement(upsert, true))
  }
  return out
}

export interface CircuitTarget {
  provider: string
  /** a key label (or id) of that provider; none: the provider's own circuit */
  key?: string
}

/** Parses the CLI form `provider[/key-label]`. */
export function parseCircuitTarget(text: string): CircuitTarget {
  const slash = text.indexOf('/')
  if (slash === 0 || slash === text.length - 1) throw invalidRequest(`'${text}' must look like <provider> or <provider>/<key-label>.`, 'target')
  return slash < 0 ? { provider: text } : { provider: text.slice(0, slash), key: text.slice(slash + 1) }
}

/**
 * `open` forces the circuit open (requests skip it) and `close` forces it closed (failures never open
 * it) until the next command; `reset` returns it to automatic, closed with clean counters.
 */
export async function setCircuitOverride(db: Kysely<Database>, target: CircuitTarget, action: CircuitAction): Promise<{ scope: string; mode: CircuitOverrideMode | null; name: string }> {
  const provider = await getProvider(db, target.provider)
  let keyId: number | null = null
  let name = provider.name
  if (target.key !== undefined) {
    const ref = target.key
    const key = await db
      .selectFrom('provider_keys')
      .select(['id', 'label'])
      .where('provider_id', '=', provider.id)
      .where('state', '!=', 'retired')
      .where((eb) => (/^\d+$/.test(ref) ? eb.or([eb('label', '=', ref), eb('id', '=', Number(ref))]) : eb('label', '=', ref)))
      .executeTakeFirst()
    if (!key) throw notFound(`Provider '${provider.name}' has no key labelled '${ref}'. List them with 'proxy keys ls --provider ${provider.name}'.`)
    keyId = key.id
    name = `${provider.name}/${key.label}`
  }
  const scope = keyId === null ? providerScope(provider.id) : keyScope(keyId)
  const mode: CircuitOverrideMode | null = action === 'open' ? 'open' : action === 'close' ? 'closed' : null
  const now = nowIso()
  await db.transaction().execute(async (tx) => {
    await tx
      .insertInto('circuit_overrides')
      .values({ scope, provider_id: provider.id, key_id: keyId, mode, epoch: 1, updated_at: now })
      .onConflict((oc) => oc.column('scope').doUpdateSet((eb) => ({ mode, epoch: eb('circuit_overrides.epoch', '+', 1), updated_at: now })))
      .execute()
    if (action === 'reset') await tx.deleteFrom('circuit_states').where('scope', '=', scope).execute()
  })
  return { scope, mode, name }
}

export interface CircuitSummary {
  provider: string
  key: string | null
  keyId: number | null
  /** 'open' | 'closed' when an operator forced it, else 'auto' */
  override: 'open' | 'closed' | 'auto'
  /** the state the server last recorded (it writes behind, about every half second) */
  state: CircuitStateName
  openUntil: string | null
  updatedAt: string | null
  /** keys only */
  health: 'ok' | 'invalid' | null
  cooldownUntil: string | null
}

/** Every provider circuit and every live key circuit, optionally for one provider (or one of its keys). */
export async function listCircuits(db: Kysely<Database>, target?: CircuitTarget): Promise<CircuitSummary[]> {
  if (target) await getProvider(db, target.provider)
  const [providers, keys, overrides, states] = await Promise.all([
    db.selectFrom('providers').select(['id', 'name']).orderBy('name').execute(),
    db.selectFrom('provider_keys').select(['id', 'provider_id', 'label', 'health', 'cooldown_until']).where('state', '!=', 'retired').orderBy('priority').orderBy('id').execute(),
    db.selectFrom('circuit_overrides').selectAll().execute(),
    db.selectFrom('circuit_states').selectAll().execute(),
  ])
  const overrideBy = new Map(overrides.map((o) => [o.scope, o]))
  const stateBy = new Map(states.map((s) => [s.scope, s]))
  const out: CircuitSummary[] = []
  for (const p of providers) {
    if (target && p.name !== target.provider) continue
    const row = (scope: string, key: { id: number; label: string; health: 'ok' | 'invalid'; cooldown_until: string | null } | null): CircuitSummary => {
      const state = stateBy.get(scope)
      const override = overrideBy.get(scope)?.mode ?? null
      return {
        provider: p.name,
        key: key?.label ?? null,
        keyId: key?.id ?? null,
        override: override ?? 'auto',
        state: state?.state ?? 'closed',
        openUntil: state?.open_until ?? null,
        updatedAt: state?.updated_at ?? null,
        health: key?.health ?? null,
        cooldownUntil: key?.cooldown_until && Date.parse(key.cooldown_until) > Date.now() ? key.cooldown_until : null,
      }
    }
    if (!target?.key) out.push(row(providerScope(p.id), null))
    for (const k of keys) {
      if (k.provider_id !== p.id) continue
      if (target?.key && k.label !== target.key && String(k.id) !== target.key) continue
      out.push(row(keyScope(k.id), k))
    }
  }
  if (target?.key && out.length === 0) throw notFound(`Provider '${target.provider}' has no key labelled '${target.key}'.`)
  return out
}
