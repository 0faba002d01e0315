import { createHash, randomFillSync } from 'node:crypto'

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

// Ids are made on every request: draw random bytes from a pool refilled 4 KiB at a time instead of
// asking the kernel for a few bytes each time.
const pool = Buffer.alloc(4096)
let poolPos = pool.length

function randomByte(): number {
  if (poolPos >= pool.length) {
    randomFillSync(pool)
    poolPos = 0
  }
  return pool[poolPos++]!
}

const ALPHABET_CODES = Buffer.from(ALPHABET, 'latin1')

/** Random base62 text; rejection sampling keeps every character equally likely. */
export function randomBase62(length: number): string {
  const out = Buffer.allocUnsafe(length)
  fillBase62(out, 0, length)
  return out.toString('latin1')
}

function fillBase62(out: Buffer, from: number, to: number): void {
  let i = from
  while (i < to) {
    const byte = randomByte()
    if (byte < 248) out[i++] = ALPHABET_CODES[byte % 62]!
  }
}

export const CLIENT_KEY_PREFIX = 'sk-proxy-'

export function newClientKey(): string {
  return CLIENT_KEY_PREFIX + randomBase62(40)
}

export function hashClientKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** What listings show of a client key: enough to recognise it, far too little to use it. */
export function displayPrefix(key: string): string {
  return key.slice(0, CLIENT_KEY_PREFIX.length + 4) + '…'
}

/**
 * `req_` and 24 base62 characters: the time in milliseconds (8 characters, so ids sort by time) and
 * 16 random ones (95 bits). Time-ordered because every id lands in the audit table's request_id index,
 * where random keys scatter inserts over the whole B-tree and made audit writes several times slower
 * (docs/performance.md).
 */
export function newRequestId(): string {
  return timeOrderedId('req_', 24)
}

/**
 * `prefix` and `length` base62 characters: the time in milliseconds as the first 8, so that ids made
 * later sort after, then random ones. For ids that are keys of an index the store appends to.
 */
export function timeOrderedId(prefix: string, length: number): string {
  // one buffer written in place: this runs on every request, and character-by-character concatenation
  // left two dozen intermediate strings behind each time
  const out = Buffer.allocUnsafe(prefix.length + length)
  const at = out.write(prefix, 0, 'latin1')
  // the time as fixed-width base62; the alphabet is in ASCII order, so the text sorts as the number does
  let ms = Date.now()
  for (let i = at + 7; i >= at; i--) {
    out[i] = ALPHABET_CODES[ms % 62]!
    ms = Math.floor(ms / 62)
  }
  fillBase62(out, at + 8, out.length)
  return out.toString('latin1')
}

export function newCompletionId(kind: 'chatcmpl' | 'cmpl'): string {
  return `${kind}-${randomBase62(29)}`
}

const SANE_REQUEST_ID = /^[A-Za-z0-9._:\-]{1,128}$/

/** A client-supplied id is echoed only when it cannot inject anything into headers or logs. */
export function acceptRequestId(header: string | null | undefined): string {
  return header && SANE_REQUEST_ID.test(header) ? header : newRequestId()
}
