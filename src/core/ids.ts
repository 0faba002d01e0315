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

/** Random base62 text; rejection sampling keeps every character equally likely. */
export function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    const byte = randomByte()
    if (byte < 248) out += ALPHABET[byte % 62]
  }
  return out
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

export function newRequestId(): string {
  return 'req_' + randomBase62(24)
}

export function newCompletionId(kind: 'chatcmpl' | 'cmpl'): string {
  return `${kind}-${randomBase62(29)}`
}

const SANE_REQUEST_ID = /^[A-Za-z0-9._:\-]{1,128}$/

/** A client-supplied id is echoed only when it cannot inject anything into headers or logs. */
export function acceptRequestId(header: string | null | undefined): string {
  return header && SANE_REQUEST_ID.test(header) ? header : newRequestId()
}
