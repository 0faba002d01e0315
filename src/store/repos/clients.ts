import type { Kysely } from 'kysely'
import { conflict, invalidRequest, notFound } from '../../core/errors.js'
import { displayPrefix, hashClientKey, newClientKey } from '../../core/ids.js'
import { clientWindows, formatRate, MAX_WINDOW_MS, MIN_WINDOW_MS, type StoredWindow, type WindowLimit } from '../../core/windows.js'
import { nowIso } from '../time.js'
import type { ClientRole, ClientRow, Database } from '../schema.js'
import { assertName } from './providers.js'

export interface ClientSummary {
  id: number
  name: string
  keyPrefix: string
  role: ClientRole
  models: string[] | null
  rpm: number | null
  tpm: number | null
  dailyTokens: number | null
  monthlyTokens: number | null
  /** sliding windows besides rpm/tpm, as `proxy clients set --limit` takes them: 'requests=100/10s' */
  limits: string[]
  expiresAt: string | null
  revokedAt: string | null
  createdAt: string
  status: 'active' | 'revoked' | 'expired'
  /** a named policy layered over the route's and the global one */
  policy: string | null
  /** the team's id (migration 0010); null: none */
  teamId: number | null
}

export interface AddClientInput {
  name: string
  role?: ClientRole
  models?: string[] | null
  expiresAt?: string | null
  rpm?: number | null
  tpm?: number | null
  dailyTokens?: number | null
  monthlyTokens?: number | null
  /** sliding windows besides rpm/tpm (migration 0004) */
  limits?: WindowLimit[] | null
  policy?: string | null
}

/** Creates a client and returns its key: the only time the key exists outside the caller's hands. */
export async function addClient(db: Kysely<Database>, input: AddClientInput): Promise<{ client: ClientSummary; key: string }> {
  assertName('Client', input.name)
  const role = input.role ?? 'user'
  if (role !== 'admin' && role !== 'user') throw invalidRequest(`Role must be 'admin' or 'user', not '${String(role)}'.`, 'role')
  if (await db.selectFrom('clients').select('id').where('name', '=', input.name).executeTakeFirst()) {
    throw conflict(`A client named '${input.name}' already exists. Use 'proxy clients rotate ${input.name}' for a new key.`)
  }
  const key = newClientKey()
  const row = await db
    .insertInto('clients')
    .values({
      name: input.name,
      key_hash: hashClientKey(key),
      key_prefix: displayPrefix(key),
      role,
      models: input.models && input.models.length > 0 ? JSON.stringify(input.models) : null,
      rpm: input.rpm ?? null,
      tpm: input.tpm ?? null,
      daily_tokens: input.dailyTokens ?? null,
      monthly_tokens: input.monthlyTokens ?? null,
      limits: storeWindows(input.limits ?? []),
      policy: input.policy ?? null,
      expires_at: input.expiresAt ?? null,
      created_at: nowIso(),
      revoked_at: null,
      rotated_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return { client: summarize(row), key }
}

/** What `proxy clients set` changes; absent fields stay, null removes a limit. */
export interface ClientLimitsPatch {
  rpm?: number | null
  tpm?: number | null
  dailyTokens?: number | null
  monthlyTokens?: number | null
  /** drop every sliding window first (then `limits` are added) */
  clearLimits?: boolean
  /** windows to add; one with the same kind and window length as a stored one replaces it */
  limits?: WindowLimit[]
}

/** Changes a client's limits and quotas; running servers apply them within about a second. */
export async function setClientLimits(db: Kysely<Database>, name: string, patch: ClientLimitsPatch): Promise<ClientSummary> {
  const row = await getClient(db, name)
  const updated = await db
    .updateTable('clients')
    .set(limitColumns(row.limits, patch))
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  return summarize(updated)
}

/** The columns a limits patch writes (clients and teams keep limits the same way); checks the values. */
export function limitColumns(storedLimits: string | null, patch: ClientLimitsPatch): { rpm?: number | null; tpm?: number | null; daily_tokens?: number | null; monthly_tokens?: number | null; limits: string | null } {
  for (const [field, value] of [['rpm', patch.rpm], ['tpm', patch.tpm], ['dailyTokens', patch.dailyTokens], ['monthlyTokens', patch.monthlyTokens]] as const) {
    if (value !== undefined && value !== null && (!Number.isSafeInteger(value) || value < 1)) throw invalidRequest(`${field} must be a whole number of at least 1 (or removed), not ${value}.`, field)
  }
  let windows: WindowLimit[] = patch.clearLimits ? [] : clientWindows(null, null, storedLimits)
  for (const w of patch.limits ?? []) windows = [...windows.filter((x) => x.kind !== w.kind || x.windowMs !== w.windowMs), w]
  return {
    ...(patch.rpm !== undefined ? { rpm: patch.rpm } : {}),
    ...(patch.tpm !== undefined ? { tpm: patch.tpm } : {}),
    ...(patch.dailyTokens !== undefined ? { daily_tokens: patch.dailyTokens } : {}),
    ...(patch.monthlyTokens !== undefined ? { monthly_tokens: patch.monthlyTokens } : {}),
    limits: storeWindows(windows),
  }
}

/** Puts a client in a team (or, with null, takes it out); running servers apply it within about a second. */
/** The models a client may use; null or [] allows every routed model. */
export async function setClientModels(db: Kysely<Database>, name: string, models: readonly string[] | null): Promise<ClientSummary> {
  const row = await getClient(db, name)
  const updated = await db
    .updateTable('clients')
    .set({ models: models && models.length > 0 ? JSON.stringify(models) : null })
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  return summarize(updated)
}

export async function setClientTeam(db: Kysely<Database>, name: string, teamId: number | null): Promise<ClientSummary> {
  const row = await getClient(db, name)
  const updated = await db.updateTable('clients').set({ team_id: teamId }).where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
  return summarize(updated)
}

function storeWindows(windows: readonly WindowLimit[]): string | null {
  if (windows.length === 0) return null
  const stored: StoredWindow[] = windows.map((w) => {
    if (!Number.isSafeInteger(w.limit) || w.limit < 1) throw invalidRequest(`A limit must be a whole number of at least 1, not ${w.limit}.`, 'limits')
    if (w.windowMs % 1000 !== 0 || w.windowMs < MIN_WINDOW_MS || w.windowMs > MAX_WINDOW_MS) throw invalidRequest('A limit window must be whole seconds, from 1s to 1d.', 'limits')
    return { kind: w.kind, limit: w.limit, window_s: w.windowMs / 1000 }
  })
  return JSON.stringify(stored)
}

export async function listClients(db: Kysely<Database>): Promise<ClientSummary[]> {
  const rows = await db.selectFrom('clients').selectAll().orderBy('name').execute()
  return rows.map(summarize)
}

export async function getClient(db: Kysely<Database>, name: string): Promise<ClientRow> {
  const row = await db.selectFrom('clients').selectAll().where('name', '=', name).executeTakeFirst()
  if (!row) throw notFound(`No client named '${name}'. List them with 'proxy clients ls'.`)
  return row
}

export async function revokeClient(db: Kysely<Database>, name: string): Promise<ClientSummary> {
  const row = await getClient(db, name)
  if (row.revoked_at) return summarize(row)
  const updated = await db.updateTable('clients').set({ revoked_at: nowIso() }).where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
  return summarize(updated)
}

/** Issues a new key for a client; the old key stops working as soon as a server reloads (about a second). */
export async function rotateClient(db: Kysely<Database>, name: string): Promise<{ client: ClientSummary; key: string }> {
  const row = await getClient(db, name)
  if (row.revoked_at) throw invalidRequest(`Client '${name}' is revoked; add a new client instead of rotating a revoked one.`, 'name')
  const key = newClientKey()
  const updated = await db
    .updateTable('clients')
    .set({ key_hash: hashClientKey(key), key_prefix: displayPrefix(key), rotated_at: nowIso() })
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  return { client: summarize(updated), key }
}

export function clientStatus(row: Pick<ClientRow, 'revoked_at' | 'expires_at'>, now = Date.now()): ClientSummary['status'] {
  if (row.revoked_at) return 'revoked'
  if (row.expires_at && Date.parse(row.expires_at) <= now) return 'expired'
  return 'active'
}

function summarize(row: ClientRow): ClientSummary {
  return {
    id: row.id,
    name: row.name,
    keyPrefix: row.key_prefix,
    role: row.role,
    models: row.models ? (JSON.parse(row.models) as string[]) : null,
    rpm: row.rpm,
    tpm: row.tpm,
    dailyTokens: row.daily_tokens,
    monthlyTokens: row.monthly_tokens,
    limits: clientWindows(null, null, row.limits).map((w) => `${w.kind}=${formatRate(w)}`),
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    createdAt: row.created_at,
    status: clientStatus(row),
    policy: row.policy,
    teamId: row.team_id ?? null,
  }
}
