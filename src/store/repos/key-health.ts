/**
 * Upstream key health in the store: what the server learnt about each key (rejected by the upstream,
 * cooling down after a 429, failures in a row), so it survives a restart. The server never writes on
 * the request path: `createHealthWriter` buffers changes and hands them to the store writer (the
 * server's writer thread) about every half second and at shutdown.
 */
import type { Kysely } from 'kysely'
import type { WriteStatement } from '../audit-batch.js'
import { writeStatement } from './write-statement.js'
import { nowIso } from '../time.js'
import type { Database, KeyHealth, ProviderKeyRow } from '../schema.js'
import { circuitStateStatements, keyScope, type CircuitStateWrite } from './circuits.js'

export type { PersistedKeyHealth } from '../../core/config.js'
import type { PersistedKeyHealth } from '../../core/config.js'

export function persistedKeyHealth(row: Pick<ProviderKeyRow, 'health' | 'health_reason' | 'health_changed_at' | 'cooldown_until' | 'health_epoch'>): PersistedKeyHealth {
  return {
    health: row.health === 'invalid' ? 'invalid' : 'ok',
    reason: row.health_reason,
    changedAt: row.health_changed_at ? Date.parse(row.health_changed_at) : null,
    cooldownUntil: row.cooldown_until ? Date.parse(row.cooldown_until) : null,
    epoch: row.health_epoch,
  }
}

/** One key's current health, as the server's write-behind buffer hands it over. */
export interface KeyHealthWrite {
  keyId: number
  /** the epoch the server knew; a write for an older epoch (the operator re-enabled the key since) is dropped */
  epoch: number
  health: KeyHealth
  reason: string | null
  changedAt: number | null
  cooldownUntil: number | null
  consecutiveFailures: number
  lastError: string | null
  lastUsedAt: number | null
}

/** Where the gateway hands health changes; `createHealthWriter` is the store-backed one. */
export interface HealthSink {
  keyHealth(write: KeyHealthWrite): void
  circuit(write: CircuitStateWrite): void
}

export interface HealthWriter extends HealthSink {
  flush(): Promise<void>
  /** flushes what is pending and stops the timer */
  close(): Promise<void>
}

export function createHealthWriter(db: Kysely<Database>, opts: { apply: (writes: WriteStatement[]) => Promise<number>; flushMs?: number; onError?: (err: unknown) => void }): HealthWriter {
  let keys = new Map<number, KeyHealthWrite>()
  let circuits = new Map<string, CircuitStateWrite>()
  let running: Promise<void> | null = null
  let closed = false

  const flush = async (): Promise<void> => {
    while (running) await running
    if (keys.size === 0 && circuits.size === 0) return
    const k = keys
    const c = circuits
    keys = new Map()
    circuits = new Map()
    running = opts
      .apply([...keyHealthStatements(db, k.values()), ...circuitStateStatements(db, c.values())])
      .then(() => {}, (err) => {
        // Kept for the next flush, unless something newer came in meanwhile.
        for (const [id, w] of k) if (!keys.has(id)) keys.set(id, w)
        for (const [scope, w] of c) if (!circuits.has(scope)) circuits.set(scope, w)
        opts.onError?.(err)
      })
      .finally(() => {
        running = null
      })
    await running
  }

  const timer = setInterval(() => void flush(), opts.flushMs ?? 500)
  timer.unref()

  return {
    keyHealth(write) {
      if (!closed) keys.set(write.keyId, write)
    },
    circuit(write) {
      if (!closed) circuits.set(write.scope, write)
    },
    flush,
    async close() {
      clearInterval(timer)
      await flush()
      closed = true
    },
  }
}

function keyHealthStatements(db: Kysely<Database>, writes: Iterable<KeyHealthWrite>): WriteStatement[] {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
  const out: WriteStatement[] = []
  for (const w of writes) {
    const update = db
      .updateTable('provider_keys')
      .set((eb) => ({
        health: w.health,
        health_reason: w.reason,
        health_changed_at: iso(w.changedAt),
        cooldown_until: iso(w.cooldownUntil),
        failure_count: w.consecutiveFailures,
        last_error: w.lastError,
        last_used_at: w.lastUsedAt === null ? eb.ref('last_used_at') : iso(w.lastUsedAt),
      }))
      .where('id', '=', w.keyId)
      .where('health_epoch', '=', w.epoch)
    out.push(writeStatement(update))
  }
  return out
}

/**
 * Clears what the server recorded about a key (health, cooldown, failures, its circuit) and bumps its
 * epoch, so a running server forgets its in-memory view at the next reload.
 */
export async function resetKeyHealth(db: Kysely<Database>, keyId: number): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx
      .updateTable('provider_keys')
      .set((eb) => ({
        health: 'ok',
        health_reason: null,
        health_changed_at: nowIso(),
        cooldown_until: null,
        failure_count: 0,
        last_error: null,
        health_epoch: eb('health_epoch', '+', 1),
      }))
      .where('id', '=', keyId)
      .execute()
    await tx.deleteFrom('circuit_states').where('scope', '=', keyScope(keyId)).execute()
  })
}
