import type { Kysely } from 'kysely'
import { conflict, invalidRequest, notFound } from '../../core/errors.js'
import { nowIso } from '../time.js'
import { PROVIDER_TYPES, type Database, type ProviderRow, type ProviderType } from '../schema.js'

export interface ProviderInput {
  name: string
  type: ProviderType
  baseUrl?: string | null
  settings?: Record<string, unknown>
}

export interface ProviderSummary {
  id: number
  name: string
  type: ProviderType
  baseUrl: string | null
  settings: Record<string, unknown>
  enabled: boolean
  keys: number
  createdAt: string
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i

export function assertName(kind: string, name: string): void {
  if (!NAME.test(name)) {
    throw invalidRequest(`${kind} name '${name}' is not valid: use letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit).`, 'name')
  }
}

export async function addProvider(db: Kysely<Database>, input: ProviderInput): Promise<ProviderSummary> {
  assertName('Provider', input.name)
  if (!PROVIDER_TYPES.includes(input.type)) {
    throw invalidRequest(`Unknown provider type '${input.type}'. Use one of: ${PROVIDER_TYPES.join(', ')}.`, 'type')
  }
  const existing = await db.selectFrom('providers').select('id').where('name', '=', input.name).executeTakeFirst()
  if (existing) throw conflict(`A provider named '${input.name}' already exists. Remove it first or choose another name.`)
  const now = nowIso()
  const row = await db
    .insertInto('providers')
    .values({
      name: input.name,
      type: input.type,
      base_url: input.baseUrl ?? null,
      settings: JSON.stringify(input.settings ?? {}),
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return summarize(row, 0)
}

export async function listProviders(db: Kysely<Database>): Promise<ProviderSummary[]> {
  const rows = await db
    .selectFrom('providers')
    .leftJoin('provider_keys', (j) => j.onRef('provider_keys.provider_id', '=', 'providers.id').on('provider_keys.state', '!=', 'retired'))
    .selectAll('providers')
    .select((eb) => eb.fn.count<number>('provider_keys.id').as('key_count'))
    .groupBy('providers.id')
    .orderBy('providers.name')
    .execute()
  return rows.map((r) => summarize(r, Number(r.key_count)))
}

export async function getProvider(db: Kysely<Database>, name: string): Promise<ProviderRow> {
  const row = await db.selectFrom('providers').selectAll().where('name', '=', name).executeTakeFirst()
  if (!row) throw notFound(`No provider named '${name}'. List them with 'proxy providers ls'.`)
  return row
}

/**
 * Changes a provider's base URL and settings in one transaction: `edit` gets the stored provider and
 * returns the new values; when it throws, nothing changes. Routes and keys stay as they are.
 */
export async function updateProvider(
  db: Kysely<Database>,
  name: string,
  edit: (current: ProviderSummary) => { baseUrl: string | null; settings: Record<string, unknown> },
): Promise<ProviderSummary> {
  return db.transaction().execute(async (tx) => {
    const row = await getProvider(tx, name)
    const keys = await tx
      .selectFrom('provider_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('provider_id', '=', row.id)
      .where('state', '!=', 'retired')
      .executeTakeFirstOrThrow()
    const next = edit(summarize(row, Number(keys.n)))
    const updated = await tx
      .updateTable('providers')
      .set({ base_url: next.baseUrl, settings: JSON.stringify(next.settings), updated_at: nowIso() })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    return summarize(updated, Number(keys.n))
  })
}

export async function removeProvider(db: Kysely<Database>, name: string): Promise<void> {
  const provider = await getProvider(db, name)
  const users = await db
    .selectFrom('route_targets')
    .innerJoin('routes', 'routes.id', 'route_targets.route_id')
    .select('routes.model')
    .where('route_targets.provider_id', '=', provider.id)
    .execute()
  if (users.length > 0) {
    const models = [...new Set(users.map((u) => u.model))].join(', ')
    throw conflict(`Provider '${name}' is still a target of model(s) ${models}. Remove or change those routes first ('proxy models rm <model>').`)
  }
  await db.deleteFrom('providers').where('id', '=', provider.id).execute()
}

function summarize(row: ProviderRow, keys: number): ProviderSummary {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    baseUrl: row.base_url,
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    enabled: row.enabled === 1,
    keys,
    createdAt: row.created_at,
  }
}
