/**
 * The Responses API objects a server keeps: written behind (never on the request path), and readable
 * at once by the client that made them, since a continuation may come before the write is committed.
 * Only the client that created a response can read, continue or delete it; for anyone else it does
 * not exist.
 */
import type { Kysely } from 'kysely'
import type { WriteStatement } from './audit-batch.js'
import type { Database } from './schema.js'
import { deleteResponseStatement, fromResponseRow, insertResponseStatement, readResponse, toResponseRow, type StoredResponse, type StoredResponseRow } from './repos/responses.js'

export interface ResponseBookOptions {
  db: Kysely<Database>
  /** commits statements through the store writer (AuditWriter.apply) */
  apply: (writes: WriteStatement[]) => Promise<number>
  now?: () => number
  /** how long writes gather before they go to the store writer in one hand-over (default 100 ms) */
  flushMs?: number
}

/** How far back `chain` follows previous_response_id. */
const MAX_CHAIN = 1000

export class ResponseBook {
  readonly #db: Kysely<Database>
  readonly #apply: ResponseBookOptions['apply']
  readonly #now: () => number
  readonly #flushMs: number
  /**
   * written but maybe not yet committed, as their rows; null marks a delete not yet committed. Rows,
   * not the objects: a response waits here for a commit, through collections of the young generation,
   * and one string each for its input and its Response costs the collector far less to keep than their
   * object graphs (docs/performance.md).
   */
  readonly #pending = new Map<string, StoredResponseRow | null>()
  /** statements not yet handed to the store writer, with the pending entries they settle */
  #queue: Array<{ id: string; value: StoredResponseRow | null; statement: WriteStatement }> = []
  #timer: NodeJS.Timeout | null = null

  constructor(opts: ResponseBookOptions) {
    this.#db = opts.db
    this.#apply = opts.apply
    this.#now = opts.now ?? Date.now
    this.#flushMs = opts.flushMs ?? 100
  }

  remember(r: StoredResponse): void {
    const row = toResponseRow(r)
    this.#pending.set(r.id, row)
    this.#write(r.id, row, insertResponseStatement(this.#db, row))
  }

  /** The response if `clientId` made it and it has not expired; null otherwise. */
  async get(id: string, clientId: number): Promise<StoredResponse | null> {
    let r: StoredResponse | null
    if (this.#pending.has(id)) {
      const row = this.#pending.get(id)!
      r = row && fromResponseRow(row)
    } else r = await readResponse(this.#db, id)
    if (!r || r.clientId !== clientId || Date.parse(r.expiresAt) <= this.#now()) return null
    return r
  }

  /** Deletes it if `clientId` made it; false when there is no such response for that client. */
  async delete(id: string, clientId: number): Promise<boolean> {
    if (!(await this.get(id, clientId))) return false
    this.#pending.set(id, null)
    this.#write(id, null, deleteResponseStatement(this.#db, id))
    return true
  }

  /** The response and the ones it continues, oldest first; null when `id` is not the client's. */
  async chain(id: string, clientId: number): Promise<StoredResponse[] | null> {
    const out: StoredResponse[] = []
    let next: string | null = id
    while (next !== null && out.length < MAX_CHAIN) {
      const r: StoredResponse | null = await this.get(next, clientId)
      if (!r) {
        if (out.length === 0) return null
        break // an earlier turn expired or was deleted: continue from what is left
      }
      out.push(r)
      next = r.previousId
    }
    return out.reverse()
  }

  /** Hands every queued write to the store writer now (at shutdown, before the writer closes). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    const batch = this.#queue
    if (batch.length === 0) return Promise.resolve()
    this.#queue = []
    // Once committed the store answers; a later write of the same id keeps its own pending entry.
    const forget = () => {
      for (const { id, value } of batch) if (this.#pending.get(id) === value) this.#pending.delete(id)
    }
    return this.#apply(batch.map((w) => w.statement)).then(forget, forget)
  }

  // Writes gather for a moment and go to the store writer together: one hand-over per response cost
  // the request path more than the rest of keeping it.
  #write(id: string, value: StoredResponseRow | null, statement: WriteStatement): void {
    this.#queue.push({ id, value, statement })
    if (this.#timer === null) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushMs)
      this.#timer.unref()
    }
  }
}
