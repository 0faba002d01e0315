/**
 * Fernet (https://github.com/fernet/spec), version 0x80, byte-compatible with
 * Python's `cryptography.fernet.Fernet`: tokens we emit decrypt there and vice versa.
 *
 * Token layout: 0x80 | timestamp (u64 BE, seconds) | IV (16) | AES-128-CBC ciphertext | HMAC-SHA256 (32)
 * Key layout:   base64url(signing key (16) | encryption key (16))
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'

const VERSION = 0x80
const TS_BYTES = 8
const IV_BYTES = 16
const BLOCK_BYTES = 16
const MAC_BYTES = 32
const HEADER_BYTES = 1 + TS_BYTES + IV_BYTES
// PKCS7 always adds at least one block, so even an empty plaintext has 16 bytes of ciphertext.
const MIN_TOKEN_BYTES = HEADER_BYTES + BLOCK_BYTES + MAC_BYTES
// Same tolerance as Python's cryptography (_MAX_CLOCK_SKEW).
const MAX_CLOCK_SKEW_SEC = 60n

export type FernetErrorCode =
  | 'bad-key'
  | 'bad-input'
  | 'bad-encoding'
  | 'too-short'
  | 'bad-version'
  | 'bad-length'
  | 'bad-mac'
  | 'expired'
  | 'future-timestamp'
  | 'bad-padding'
  | 'bad-utf8'

/**
 * Every failure of this module. Messages describe the defect only; they never carry the key,
 * the token or the plaintext, so they are safe to log.
 */
export class FernetError extends Error {
  readonly code: FernetErrorCode
  constructor(code: FernetErrorCode, message: string) {
    super(message)
    this.name = 'FernetError'
    this.code = code
  }
}

export interface FernetEncryptOptions {
  /** Fixed IV, only for reproducing test vectors; a reused IV leaks plaintext equality. */
  iv?: Uint8Array
  /** Unix seconds to record in the token; defaults to the current time. */
  now?: number
}

export interface FernetDecryptOptions {
  /** Maximum token age in seconds. Without it neither age nor clock skew is checked, as in Python. */
  ttlSec?: number
  /** Unix seconds to treat as the current time; defaults to the current time. */
  now?: number
}

export interface Fernet {
  encrypt(plain: string | Uint8Array, opts?: FernetEncryptOptions): string
  decrypt(token: string, opts?: FernetDecryptOptions): Buffer
  decryptString(token: string, opts?: FernetDecryptOptions): string
}

// Python's urlsafe_b64decode maps '-_' onto '+/' and so also accepts the standard alphabet;
// we accept both. Python additionally discards any other character and demands padding; we
// reject stray characters (no legitimate producer emits them) and tolerate missing padding
// (some encoders strip it). The MAC covers the decoded bytes, so this leniency is harmless.
const BASE64_RE = /^[A-Za-z0-9\-_+/]*={0,2}$/

function decodeBase64(text: string): Buffer | null {
  if (!BASE64_RE.test(text)) return null
  const body = text.replace(/=+$/, '')
  const padded = body.length !== text.length
  if (padded && text.length % 4 !== 0) return null
  // A lone sextet cannot encode a whole byte.
  if (body.length % 4 === 1) return null
  return Buffer.from(body, 'base64')
}

function encodeBase64Url(bytes: Buffer): string {
  // Python emits padded base64url, and rejects tokens without the padding.
  const s = bytes.toString('base64url')
  return s + '='.repeat((4 - (s.length % 4)) % 4)
}

function splitKey(key: string): { signing: Buffer; encryption: Buffer } | null {
  if (typeof key !== 'string') return null
  const raw = decodeBase64(key)
  if (raw === null || raw.length !== 32) return null
  return { signing: raw.subarray(0, 16), encryption: raw.subarray(16, 32) }
}

export function generateFernetKey(): string {
  return encodeBase64Url(randomBytes(32))
}

export function isValidFernetKey(key: string): boolean {
  return splitKey(key) !== null
}

function currentUnixSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

function toUnixSeconds(value: number | undefined, what: string): bigint {
  if (value === undefined) return BigInt(currentUnixSeconds())
  if (!Number.isFinite(value) || value < 0) {
    throw new FernetError('bad-input', `${what} must be a non-negative number of Unix seconds`)
  }
  return BigInt(Math.floor(value))
}

export function createFernet(key: string): Fernet {
  const parts = splitKey(key)
  if (parts === null) {
    throw new FernetError('bad-key', 'Fernet key must be 32 bytes encoded as url-safe base64 (44 characters)')
  }
  // Copies, so a caller mutating the buffer it decoded from cannot alter a live instance.
  const signingKey = Buffer.from(parts.signing)
  const encryptionKey = Buffer.from(parts.encryption)

  const mac = (signed: Buffer): Buffer => createHmac('sha256', signingKey).update(signed).digest()

  function encrypt(plain: string | Uint8Array, opts: FernetEncryptOptions = {}): string {
    let data: Buffer
    if (typeof plain === 'string') data = Buffer.from(plain, 'utf8')
    else if (plain instanceof Uint8Array) data = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength)
    else throw new FernetError('bad-input', 'plaintext must be a string or a Uint8Array')

    const iv = opts.iv === undefined ? randomBytes(IV_BYTES) : Buffer.from(opts.iv)
    if (iv.length !== IV_BYTES) throw new FernetError('bad-input', `IV must be ${IV_BYTES} bytes`)
    const ts = toUnixSeconds(opts.now, 'now')

    const header = Buffer.alloc(HEADER_BYTES)
    header[0] = VERSION
    header.writeBigUInt64BE(ts, 1)
    iv.copy(header, 1 + TS_BYTES)

    const cipher = createCipheriv('aes-128-cbc', encryptionKey, iv)
    const signed = Buffer.concat([header, cipher.update(data), cipher.final()])
    return encodeBase64Url(Buffer.concat([signed, mac(signed)]))
  }

  function decrypt(token: string, opts: FernetDecryptOptions = {}): Buffer {
    if (typeof token !== 'string') throw new FernetError('bad-input', 'Fernet token must be a string')
    const raw = decodeBase64(token)
    if (raw === null) throw new FernetError('bad-encoding', 'Fernet token is not valid url-safe base64')
    if (raw.length >= 1 && raw[0] !== VERSION) {
      throw new FernetError('bad-version', 'Fernet token has an unsupported version byte')
    }
    if (raw.length < MIN_TOKEN_BYTES) throw new FernetError('too-short', 'Fernet token is too short')
    if ((raw.length - HEADER_BYTES - MAC_BYTES) % BLOCK_BYTES !== 0) {
      throw new FernetError('bad-length', 'Fernet token ciphertext is not a multiple of the AES block size')
    }

    const signed = raw.subarray(0, raw.length - MAC_BYTES)
    const given = raw.subarray(raw.length - MAC_BYTES)
    // Authenticate before anything else looks at the contents, so a forged token can only
    // ever produce this one error (no padding oracle, no timestamp probing).
    if (!timingSafeEqual(mac(signed), given)) {
      throw new FernetError('bad-mac', 'Fernet token failed authentication (wrong key or tampered token)')
    }

    // Python checks age and future skew only when a TTL is given. Secrets at rest are decrypted
    // without one, and must stay readable even if they were written by a host whose clock ran ahead.
    if (opts.ttlSec !== undefined) {
      if (!Number.isFinite(opts.ttlSec) || opts.ttlSec < 0) {
        throw new FernetError('bad-input', 'ttlSec must be a non-negative number of seconds')
      }
      const ts = raw.readBigUInt64BE(1)
      const now = toUnixSeconds(opts.now, 'now')
      if (ts + BigInt(Math.floor(opts.ttlSec)) < now) throw new FernetError('expired', 'Fernet token has expired')
      if (now + MAX_CLOCK_SKEW_SEC < ts) {
        throw new FernetError('future-timestamp', 'Fernet token timestamp is too far in the future')
      }
    }

    const iv = raw.subarray(1 + TS_BYTES, HEADER_BYTES)
    const ciphertext = raw.subarray(HEADER_BYTES, raw.length - MAC_BYTES)
    const decipher = createDecipheriv('aes-128-cbc', encryptionKey, iv)
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()])
    } catch {
      throw new FernetError('bad-padding', 'Fernet token has invalid padding')
    }
  }

  // fatal: Python's .decode() raises on bad UTF-8 rather than inventing U+FFFD.
  // ignoreBOM: a leading U+FEFF is part of the secret, not a marker to strip.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

  function decryptString(token: string, opts?: FernetDecryptOptions): string {
    const bytes = decrypt(token, opts)
    try {
      return utf8.decode(bytes)
    } catch {
      throw new FernetError('bad-utf8', 'Fernet plaintext is not valid UTF-8')
    }
  }

  return { encrypt, decrypt, decryptString }
}

export interface FernetRing extends Fernet {
  /** How many keys the ring holds, newest first. */
  readonly size: number
  /** Index of the first key that decrypts the token, or -1 when none does. */
  keyIndexOf(token: string): number
}

/**
 * Several keys, newest first, like Python's MultiFernet: encrypt with the first, decrypt with the first
 * key that authenticates the token. This is what lets a master key rotate without a flag day.
 */
export function createFernetRing(keys: readonly string[]): FernetRing {
  if (keys.length === 0) throw new FernetError('bad-key', 'a key ring needs at least one Fernet key')
  const members = keys.map((k) => createFernet(k))
  const [first] = members as [Fernet, ...Fernet[]]

  // Only a MAC failure means "try the next key"; a malformed or expired token fails the same under all.
  function withFirstKey<T>(use: (f: Fernet) => T): T {
    let lastError: unknown
    for (const f of members) {
      try {
        return use(f)
      } catch (err) {
        if (!(err instanceof FernetError) || err.code !== 'bad-mac') throw err
        lastError = err
      }
    }
    throw lastError
  }

  function keyIndexOf(token: string): number {
    return members.findIndex((f) => {
      try {
        f.decrypt(token)
        return true
      } catch {
        return false
      }
    })
  }

  return {
    size: members.length,
    encrypt: first.encrypt,
    decrypt: (token, opts) => withFirstKey((f) => f.decrypt(token, opts)),
    decryptString: (token, opts) => withFirstKey((f) => f.decryptString(token, opts)),
    keyIndexOf,
  }
}
