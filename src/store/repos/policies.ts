import type { Kysely } from 'kysely'
import { notFound } from '../../core/errors.js'
import { parsePolicy, type PolicyDocument } from '../../core/policy-schema.js'
import { nowIso } from '../time.js'
import type { Database } from '../schema.js'
import { assertName } from './providers.js'

export interface PolicySummary {
  name: string
  document: PolicyDocument
  updatedAt: string
}

/** Validates before writing, so the store never holds a policy the server would refuse to load. */
export async function setPolicy(db: Kysely<Database>, name: string, raw: unknown): Promise<PolicySummary> {
  assertName('Policy', name)
  const document = parsePolicy(raw)
  const updatedAt = nowIso()
  await db
    .insertInto('policies')
    .values({ name, document: JSON.stringify(document), updated_at: updatedAt })
    .onConflict((oc) => oc.column('name').doUpdateSet({ document: JSON.stringify(document), updated_at: updatedAt }))
    .execute()
  return { name, document, updatedAt }
}

export async function listPolicies(db: Kysely<Database>): Promise<PolicySummary[]> {
  const rows = await db.selectFrom('policies').selectAll().orderBy('name').execute()
  return rows.map((r) => ({ name: r.name, document: JSON.parse(r.document) as PolicyDocument, updatedAt: r.updated_at }))
}

export async function getPolicy(db: Kysely<Database>, name: string): Promise<PolicySummary> {
  const row = await db.selectFrom('policies').selectAll().where('name', '=', name).executeTakeFirst()
  if (!row) throw notFound(`No policy named '${name}'. List them with 'proxy policy show'.`)
  return { name: row.name, document: JSON.parse(row.document) as PolicyDocument, updatedAt: row.updated_at }
}

export async function removePolicy(db: Kysely<Database>, name: string): Promise<void> {
  const result = await db.deleteFrom('policies').where('name', '=', name).executeTakeFirst()
  if (Number(result.numDeletedRows) === 0) throw notFound(`No policy named '${name}'.`)
}
