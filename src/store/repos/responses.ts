/**
 * Responses API objects the proxy keeps (migration 0006): written behind through the store writer,
 * read when a client continues, retrieves or deletes one.
 */
import type { Kysely, Selectable } from 'kysely'
import type { WriteStatement } from '../audit-batch.js'
import type { Database, StoredResponseTable } from '../schema.js'
import { writeStatement } from './write-statement.js'

export interface StoredResponse {
  id: string
  clientId: number
  provider: string
  keyLabel: string | null
  /** made by a provider that serves /v1/responses itself: only the owner and the provider are kept */
  native: boolean
  model: string
  previousId: string | null
  /** this turn's input items (translated providers) */
  input: unknown[] | null
  /** the Response object as answered (translated providers) */
  response: Record<string, unknown> | null
  createdAt: string
  expiresAt: string
}

/** A stored response as its row holds it: the input items and the Response as JSON text. */
export type StoredResponseRow = Selectable<StoredResponseTable>

/** The row of a response, serialized once: its statement and, until committed, the server's memory hold this. */
export function toResponseRow(r: StoredResponse): StoredResponseRow {
  // in the order of the table's columns, which the insert's parameters keep (insertResponseStatement)
  return {
    id: r.id,
    client_id: r.clientId,
    provider: r.provider,
    key_label: r.keyLabel,
    native: r.native ? 1 : 0,
    model: r.model,
    previous_id: r.previousId,
    input: r.input === null ? null : JSON.stringify(r.input),
    response: r.response === null ? null : JSON.stringify(r.response),
    created_at: r.createdAt,
    expires_at: r.expiresAt,
  }
}

export function fromResponseRow(row: StoredResponseRow): StoredResponse {
  return {
    id: row.id,
    clientId: row.client_id,
    provider: row.provider,
    keyLabel: row.key_label,
    native: row.native === 1,
    model: row.model,
    previousId: row.previous_id,
    input: row.input === null ? null : (JSON.parse(row.input) as unknown[]),
    response: row.response === null ? null : (JSON.parse(row.response) as Record<string, unknown>),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  }
}

// The insert is compiled once per store and reused with each row's values: compiling it per response
// cost more than the rest of the write on the request path. Kysely emits the parameters in the order
// of the values object, which every row from toResponseRow keeps.
const compiled = new WeakMap<Kysely<Database>, string>()

export function insertResponseStatement(db: Kysely<Database>, row: StoredResponseRow): WriteStatement {
  let sql = compiled.get(db)
  if (sql === undefined) {
    const statement = writeStatement(db.insertInto('responses').values(row))
    compiled.set(db, (sql = statement.sql))
    return statement
  }
  return { sql, parameters: Object.values(row) }
}

export function deleteResponseStatement(db: Kysely<Database>, id: string): WriteStatement {
  return writeStatement(db.deleteFrom('responses').where('id', '=', id))
}

/** Deletes the expired ones, at most `limit` rows a statement. */
export function pruneResponsesStatement(db: Kysely<Database>, nowIso: string, limit: number): WriteStatement {
  return writeStatement(db.deleteFrom('responses').where('id', 'in', db.selectFrom('responses').select('id').where('expires_at', '<', nowIso).limit(limit)))
}

export async function readResponse(db: Kysely<Database>, id: string): Promise<StoredResponse | null> {
  const row = await db.selectFrom('responses').selectAll().where('id', '=', id).executeTakeFirst()
  return row ? fromResponseRow(row) : null
}
