/**
 * Audit rows whose captured bodies live in the capture store: reading them back as if they were inline
 * (`proxy audit show`, the admin API), and deleting the objects with their rows (`proxy audit prune`,
 * the server's retention). Written against the ObjectStore interface; the SDK stays in s3-object-store.ts.
 */
import type { Kysely } from 'kysely'
import { invalidRequest, ProxyError } from '../core/errors.js'
import type { ObjectStore } from './object-store.js'
import { auditObjectsBefore, deleteAuditRows, pruneAudit } from './repos/audit.js'
import type { AuditRow, Database } from './schema.js'

/** An audit row with its bodies read back, and what could not be read, said plainly. */
export type AuditRowWithBodies = AuditRow & { capture_notes?: string[] }

/**
 * Fills request_body and response_body from the capture store where the row points there. A body that
 * cannot be had (dropped when written, its object missing, the store unreachable or not configured)
 * stays null and a note says why; the rest of the row is answered either way.
 */
export async function withCapturedBodies(rows: readonly AuditRow[], objects: ObjectStore | null): Promise<AuditRowWithBodies[]> {
  return Promise.all(
    rows.map(async (row) => {
      const notes: string[] = []
      const out: AuditRowWithBodies = { ...row }
      for (const which of ['request', 'response'] as const) {
        const key = row[`${which}_body_key`]
        const bytes = row[`${which}_body_bytes`]
        if (key === null) {
          if (bytes !== null && row.capture_dropped) notes.push(`The ${which} body (${bytes} bytes) was not kept: the capture store did not take it (${droppedReason(row.capture_dropped)}).`)
          continue
        }
        if (!objects) {
          notes.push(`The ${which} body (${bytes ?? '?'} bytes) is in the capture store as '${key}'; pass --capture-store s3://bucket/prefix (or set PROXY_CAPTURE_STORE) to read it.`)
          continue
        }
        try {
          const text = await objects.get(key)
          if (text === null) notes.push(`The ${which} body's object '${key}' is missing from ${bucketOf(objects)}: it was deleted, or never written.`)
          else out[`${which}_body`] = text
        } catch (err) {
          notes.push(`The ${which} body could not be read from the capture store: ${err instanceof Error ? err.message : String(err)}`)
        }
      }
      if (notes.length > 0) out.capture_notes = notes
      return out
    }),
  )
}

function droppedReason(reason: string): string {
  const known: Record<string, string> = {
    error: 'the write to it failed',
    timeout: 'it did not answer in time',
    unavailable: 'it had failed just before, so the proxy did not try',
    queue_full: 'too many bodies were waiting for it',
  }
  return known[reason] ?? reason
}

function bucketOf(objects: ObjectStore): string {
  return objects.location.replace(/^(s3:\/\/[^/]+).*$/, '$1')
}

/** rows whose objects go in one DeleteObjects call (at most 1,000 keys) */
export const PRUNE_OBJECT_ROWS = 500

/**
 * Deletes the objects of rows older than `beforeIso` that have some, then those rows (through
 * `deleteRows`: directly, or handed to the server's store writer), in chunks; resolves with the rows
 * deleted. Rows go only once their objects are gone, so a failing store (this rejects with its error)
 * leaves rows pointing at objects, never objects no row points at.
 */
export async function deleteRowsWithObjects(db: Kysely<Database>, objects: ObjectStore, beforeIso: string, deleteRows: (ids: number[]) => Promise<number>): Promise<number> {
  let deleted = 0
  for (;;) {
    const rows = await auditObjectsBefore(db, beforeIso, PRUNE_OBJECT_ROWS)
    if (rows.length === 0) return deleted
    await objects.delete(rows.flatMap((r) => r.keys))
    const n = await deleteRows(rows.map((r) => r.id))
    deleted += n
    // rows that would not go (another process holds them?) must not loop forever
    if (n === 0) return deleted
  }
}

/**
 * `proxy audit prune`: rows older than `beforeIso` with their objects, then every other old row.
 * Without a store, rows that have objects are refused rather than orphaning their objects.
 */
export async function pruneAuditWithObjects(db: Kysely<Database>, objects: ObjectStore | null, beforeIso: string): Promise<number> {
  if (!objects) {
    if ((await auditObjectsBefore(db, beforeIso, 1)).length > 0) {
      throw invalidRequest(
        `Audit rows from before ${beforeIso} keep bodies in a capture store. Pass --capture-store s3://bucket/prefix (or set PROXY_CAPTURE_STORE) so their objects are deleted with them. Nothing was deleted.`,
      )
    }
    return pruneAudit(db, beforeIso)
  }
  let deleted = 0
  try {
    await deleteRowsWithObjects(db, objects, beforeIso, async (ids) => {
      const n = await deleteAuditRows(db, ids)
      deleted += n
      return n
    })
  } catch (err) {
    const done = deleted > 0 ? `Deleted ${deleted} row(s) and their objects; then: ` : ''
    throw new ProxyError({
      status: 503,
      type: 'server_error',
      code: 'capture_store_unavailable',
      message: `${done}${err instanceof Error ? err.message : String(err)} The rows stay until their objects are deleted; run prune again when the store answers.`,
      cause: err,
    })
  }
  return deleted + (await pruneAudit(db, beforeIso, { inlineOnly: true }))
}
