import type { Kysely } from 'kysely'
import { invalidRequest, notFound } from '../../core/errors.js'
import type { Store } from '../db.js'
import { nowIso } from '../time.js'
import type { Database, KeyState, ProviderKeyRow } from '../schema.js'
import { assertName, getProvider } from './providers.js'

/** A provider key as the CLI and admin API show it: everything but the secret. */
export interface KeySummary {
  id: number
  provider: string
  label: string
  priority: number
  weight: number
  state: KeyState
  createdAt: string
  rotatedAt: string | null
  lastUsedAt: string | null
  failureCount: number
  lastError: string | null
  /** 'invalid' after the upstream rejected it (401/403), until rotated or re-enabled; 'cooling' after a 429 */
  health: 'ok' | 'cooling' | 'invalid'
  healthReason: string | null
  cooldownUntil: string | null
}

export interface AddKeyInput {
  provider: string
  secret: string
  label?: string
  priority?: number
  weight?: number
}

export async function addKey(store: Store, input: AddKeyInput): Promise<KeySummary> {
  const secret = checkSecret(input.secret)
  const provider = await getProvider(store.db, input.provider)
  const label = input.label ?? (await nextLabel(store.db, provider.id))
  assertName('Key label', label)
  if (await liveKeyByLabel(store.db, provider.id, label)) {
    throw invalidRequest(`Provider '${provider.name}' already has a key labelled '${label}'. Use 'proxy keys rotate ${label}' to replace its secret.`, 'label')
  }
  const row = await store.db
    .insertInto('provider_keys')
    .values({
      provider_id: provider.id,
      label,
      secret: store.fernet.encrypt(secret),
      priority: checkInt(input.priority ?? 0, 'priority', 0),
      weight: checkInt(input.weight ?? 1, 'weight', 1),
      created_at: nowIso(),
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return summarize(row, provider.name)
}

export async function listKeys(db: Kysely<Database>, opts: { provider?: string; includeRetired?: boolean } = {}): Promise<KeySummary[]> {
  let q = db
    .selectFrom('provider_keys')
    .innerJoin('providers', 'providers.id', 'provider_keys.provider_id')
    .selectAll('provider_keys')
    .select('providers.name as provider_name')
    .orderBy('providers.name')
    .orderBy('provider_keys.priority')
    .orderBy('provider_keys.id')
  if (opts.provider) {
    await getProvider(db, opts.provider)
    q = q.where('providers.name', '=', opts.provider)
  }
  if (!opts.includeRetired) q = q.where('provider_keys.state', '!=', 'retired')
  const rows = await q.execute()
  return rows.map((r) => summarize(r, r.provider_name))
}

/**
 * Finds a live key by numeric id or by label. A label used by keys of several providers is ambiguous:
 * the caller must say which provider, rather than the proxy guessing which key to change.
 */
export async function findKey(db: Kysely<Database>, ref: string, provider?: string): Promise<KeySummary> {
  const keys = await listKeys(db, { provider })
  const byId = /^\d+$/.test(ref) ? keys.find((k) => k.id === Number(ref)) : undefined
  if (byId) return byId
  const byLabel = keys.filter((k) => k.label === ref)
  if (byLabel.length === 1) return byLabel[0]!
  if (byLabel.length > 1) {
    throw invalidRequest(`Label '${ref}' is used by keys of several providers (${byLabel.map((k) => k.provider).join(', ')}). Pass the key id or --provider.`, 'key')
  }
  throw notFound(`No key with id or label '${ref}'${provider ? ` for provider '${provider}'` : ''}. List them with 'proxy keys ls'.`)
}

/**
 * Replaces a key's secret in one transaction: the new row takes over the label, priority and weight and
 * the old row is kept as 'retired'. A running server swaps its snapshot at once; requests already using
 * the old secret hold their own copy and finish with it.
 */
export async function rotateKey(store: Store, ref: string, newSecret: string, provider?: string): Promise<{ retired: KeySummary; key: KeySummary }> {
  const secret = checkSecret(newSecret)
  const old = await findKey(store.db, ref, provider)
  const now = nowIso()
  const row = await store.db.transaction().execute(async (tx) => {
    await tx.updateTable('provider_keys').set({ state: 'retired', rotated_at: now }).where('id', '=', old.id).execute()
    const source = await tx.selectFrom('provider_keys').selectAll().where('id', '=', old.id).executeTakeFirstOrThrow()
    return tx
      .insertInto('provider_keys')
      .values({
        provider_id: source.provider_id,
        label: source.label,
        secret: store.fernet.encrypt(secret),
        priority: source.priority,
        weight: source.weight,
        state: old.state === 'disabled' ? 'disabled' : 'active',
        created_at: now,
        rotated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
  })
  return { retired: { ...old, state: 'retired', rotatedAt: now }, key: summarize(row, old.provider) }
}

export async function setKeyState(db: Kysely<Database>, ref: string, state: 'active' | 'disabled', provider?: string): Promise<KeySummary> {
  const key = await findKey(db, ref, provider)
  await db.updateTable('provider_keys').set({ state, failure_count: 0, last_error: null }).where('id', '=', key.id).execute()
  return { ...key, state, failureCount: 0, lastError: null }
}

export async function removeKey(db: Kysely<Database>, ref: string, provider?: string): Promise<KeySummary> {
  const key = await findKey(db, ref, provider)
  await db.deleteFrom('provider_keys').where('id', '=', key.id).execute()
  return key
}

async function liveKeyByLabel(db: Kysely<Database>, providerId: number, label: string) {
  return db
    .selectFrom('provider_keys')
    .select('id')
    .where('provider_id', '=', providerId)
    .where('label', '=', label)
    .where('state', '!=', 'retired')
    .executeTakeFirst()
}

async function nextLabel(db: Kysely<Database>, providerId: number): Promise<string> {
  for (let n = 1; ; n++) {
    if (!(await liveKeyByLabel(db, providerId, `key-${n}`))) return `key-${n}`
  }
}

function checkSecret(secret: string): string {
  const trimmed = secret.trim()
  if (!trimmed) throw invalidRequest('The key secret is empty. Pass it on stdin, at the prompt, or with --from-env VAR.', 'secret')
  if (/\s/.test(trimmed)) throw invalidRequest('The key secret contains white space; API keys never do. Check what was pasted.', 'secret')
  return trimmed
}

function checkInt(value: number, name: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw invalidRequest(`${name} must be a whole number of at least ${min}.`, name)
  return value
}

function summarize(row: ProviderKeyRow, provider: string): KeySummary {
  return {
    id: row.id,
    provider,
    label: row.label,
    priority: row.priority,
    weight: row.weight,
    state: row.state,
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
    lastUsedAt: row.last_used_at,
    failureCount: row.failure_count,
    lastError: row.last_error,
    ...keyHealthOf(row),
  }
}

function keyHealthOf(row: ProviderKeyRow): Pick<KeySummary, 'health' | 'healthReason' | 'cooldownUntil'> {
  if (row.health === 'invalid') return { health: 'invalid', healthReason: row.health_reason, cooldownUntil: null }
  if (row.cooldown_until && Date.parse(row.cooldown_until) > Date.now()) return { health: 'cooling', healthReason: row.health_reason, cooldownUntil: row.cooldown_until }
  return { health: 'ok', healthReason: null, cooldownUntil: null }
}
