/**
 * Master-key rotation: every stored upstream secret (and the store's check token) re-encrypted under a
 * new key in one transaction, so a crash leaves each secret under the old key or the new one, never lost.
 */
import { CHECK_PLAINTEXT, MASTER_KEY_CHECK, type Store } from './db.js'
import { createFernetRing, isValidFernetKey, type FernetRing } from './fernet.js'
import { MasterKeyError } from './master-key.js'

export interface RotationOptions {
  /** Called after each re-encrypted row, inside the transaction (tests use it to crash mid-way). */
  afterRow?: (done: number) => void
}

/** The ring to store after rotating to `newKey`: the new key first, then every key in use now. */
export function rotatedRing(newKey: string, current: readonly string[]): string[] {
  if (!isValidFernetKey(newKey)) throw new MasterKeyError('The new master key is not a Fernet key (32 bytes of url-safe base64, 44 characters ending in "=").')
  if (current.includes(newKey)) throw new MasterKeyError('The new master key is already in the ring; generate a fresh one.')
  return [newKey, ...current]
}

/** Re-encrypts every secret under the first key of `ring`; returns how many provider keys it rewrote. */
export async function reencryptSecrets(store: Store, ring: readonly string[], opts: RotationOptions = {}): Promise<number> {
  const target = createFernetRing(ring)
  return store.db.transaction().execute(async (tx) => {
    const rows = await tx.selectFrom('provider_keys').select(['id', 'label', 'secret']).orderBy('id').execute()
    let done = 0
    for (const row of rows) {
      const secret = openWith(target, row.secret, `Key '${row.label}' (id ${row.id})`)
      await tx.updateTable('provider_keys').set({ secret: target.encrypt(secret) }).where('id', '=', row.id).execute()
      done++
      opts.afterRow?.(done)
    }
    await tx.updateTable('meta').set({ value: target.encrypt(CHECK_PLAINTEXT) }).where('key', '=', MASTER_KEY_CHECK).execute()
    return done
  })
}

function openWith(ring: FernetRing, token: string, what: string): string {
  try {
    return ring.decryptString(token)
  } catch {
    // Nothing is written: the transaction rolls back, and the store keeps its current keys.
    throw new MasterKeyError(`${what} cannot be decrypted with any key of the current ring; nothing was changed. Add the key it was written with to the ring, or remove that provider key.`)
  }
}

/** For each key of the store's ring, how many stored secrets it opens first; `none` opens with no key. */
export async function secretsPerKey(store: Store): Promise<{ perKey: number[]; none: number }> {
  const rows = await store.db.selectFrom('provider_keys').select('secret').execute()
  const perKey = new Array<number>(store.fernet.size).fill(0)
  let none = 0
  for (const { secret } of rows) {
    const i = store.fernet.keyIndexOf(secret)
    if (i < 0) none++
    else perKey[i]!++
  }
  return { perKey, none }
}
