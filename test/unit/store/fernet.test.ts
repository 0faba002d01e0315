import { describe, expect, it } from 'vitest'
import { createFernet, FernetError, generateFernetKey, isValidFernetKey } from '../../../src/store/fernet.js'
import { readTestdata, skipWithoutTestdata, testdataDir } from '../../helpers/testdata.js'

interface GenerateVector { token: string; now: string; iv: number[]; src: string; secret: string }
interface VerifyVector { token: string; now: string; ttl_sec: number; src: string; secret: string }
interface InvalidVector { desc: string; token: string; now: string; ttl_sec: number; secret: string }

const unixSeconds = (rfc3339: string): number => Math.floor(Date.parse(rfc3339) / 1000)

function loadVectors<T>(name: string): T[] {
  return testdataDir === null ? [] : (JSON.parse(readTestdata(`fernet/${name}`)) as T[])
}

const skipVectors = skipWithoutTestdata('the Fernet spec vectors')

describe.skipIf(skipVectors)('Fernet spec vectors', () => {
  const generate = loadVectors<GenerateVector>('generate.json')
  const verify = loadVectors<VerifyVector>('verify.json')
  const invalid = loadVectors<InvalidVector>('invalid.json')

  it('has vectors to run', () => {
    expect(generate.length).toBeGreaterThan(0)
    expect(verify.length).toBeGreaterThan(0)
    expect(invalid.length).toBeGreaterThan(0)
  })

  for (const [i, v] of generate.entries()) {
    it(`generate #${i}: reproduces the token from iv and now`, () => {
      const token = createFernet(v.secret).encrypt(v.src, { iv: Uint8Array.from(v.iv), now: unixSeconds(v.now) })
      expect(token).toBe(v.token)
    })
  }

  for (const [i, v] of verify.entries()) {
    it(`verify #${i}: decrypts within the ttl`, () => {
      const plain = createFernet(v.secret).decryptString(v.token, { ttlSec: v.ttl_sec, now: unixSeconds(v.now) })
      expect(plain).toBe(v.src)
    })
  }

  for (const v of invalid) {
    it(`rejects: ${v.desc}`, () => {
      const f = createFernet(v.secret)
      expect(() => f.decrypt(v.token, { ttlSec: v.ttl_sec, now: unixSeconds(v.now) })).toThrow(FernetError)
    })
  }
})

describe('Fernet keys', () => {
  it('generates padded url-safe keys like Python', () => {
    const key = generateFernetKey()
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}=$/)
    expect(isValidFernetKey(key)).toBe(true)
    expect(generateFernetKey()).not.toBe(key)
  })

  it('rejects malformed keys', () => {
    expect(isValidFernetKey('')).toBe(false)
    expect(isValidFernetKey('not a key')).toBe(false)
    expect(isValidFernetKey(Buffer.alloc(31).toString('base64url'))).toBe(false)
    expect(isValidFernetKey(Buffer.alloc(33).toString('base64url'))).toBe(false)
    expect(isValidFernetKey(`${generateFernetKey()}\n`)).toBe(false)
  })

  it('throws FernetError on a malformed key without echoing it', () => {
    const bad = 'c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0'
    let caught: unknown
    try {
      createFernet(bad)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(FernetError)
    expect((caught as FernetError).code).toBe('bad-key')
    expect((caught as Error).message).not.toContain(bad)
  })
})

describe('Fernet round trips', () => {
  const key = generateFernetKey()
  const f = createFernet(key)

  it.each([
    ['empty string', ''],
    ['unicode', 'sk-ключ-🔑-鍵-\u{FEFF}bom-kept'],
    ['10 KB', 'x'.repeat(10 * 1024)],
  ])('round-trips %s', (_name, text) => {
    expect(f.decryptString(f.encrypt(text))).toBe(text)
  })

  it('round-trips bytes, honouring a subarray view', () => {
    const backing = Uint8Array.from([9, 9, 0, 1, 2, 255, 9])
    const view = backing.subarray(2, 6)
    expect([...f.decrypt(f.encrypt(view))]).toEqual([0, 1, 2, 255])
  })

  it('emits padded base64url tokens that start with the version byte', () => {
    const token = f.encrypt('hello')
    expect(token.length % 4).toBe(0)
    expect(token).toMatch(/^gAAAAA[A-Za-z0-9_-]*=*$/)
  })

  it('uses a fresh IV each time', () => {
    expect(f.encrypt('same')).not.toBe(f.encrypt('same'))
  })

  it('fails with the wrong key', () => {
    const other = createFernet(generateFernetKey())
    expect(() => other.decrypt(f.encrypt('secret'))).toThrow(FernetError)
    try {
      other.decrypt(f.encrypt('secret'))
    } catch (err) {
      expect((err as FernetError).code).toBe('bad-mac')
      expect((err as Error).message).not.toContain('secret')
      expect((err as Error).message).not.toContain(key)
    }
  })

  it('decrypts a token with its padding stripped', () => {
    // 'hello' gives a 73-byte token, which base64 must pad.
    const token = f.encrypt('hello')
    expect(token.endsWith('=')).toBe(true)
    expect(f.decryptString(token.replace(/=+$/, ''))).toBe('hello')
  })

  it('accepts the standard base64 alphabet, as Python does', () => {
    let token = ''
    while (!/[-_]/.test(token)) token = f.encrypt('hello')
    expect(f.decryptString(token.replace(/-/g, '+').replace(/_/g, '/'))).toBe('hello')
  })

  it('rejects characters outside the base64 alphabets', () => {
    const token = f.encrypt('hello')
    expect(() => f.decrypt(`${token.slice(0, 10)}%${token.slice(10)}`)).toThrow(/base64/)
    expect(() => f.decrypt(`${token}\n`)).toThrow(FernetError)
  })

  it('rejects a wrong version byte', () => {
    const raw = Buffer.from(f.encrypt('hello'), 'base64url')
    raw[0] = 0x81
    expect(() => f.decrypt(raw.toString('base64url'))).toThrow(expect.objectContaining({ code: 'bad-version' }))
  })

  it('rejects a flipped ciphertext bit', () => {
    const raw = Buffer.from(f.encrypt('hello'), 'base64url')
    raw[30] = (raw[30] ?? 0) ^ 1
    expect(() => f.decrypt(raw.toString('base64url'))).toThrow(expect.objectContaining({ code: 'bad-mac' }))
  })

  it('rejects invalid UTF-8 in decryptString but not in decrypt', () => {
    const token = f.encrypt(Uint8Array.from([0xff, 0xfe, 0x00]))
    expect([...f.decrypt(token)]).toEqual([0xff, 0xfe, 0x00])
    expect(() => f.decryptString(token)).toThrow(expect.objectContaining({ code: 'bad-utf8' }))
  })

  it('checks age and clock skew only when a ttl is given, as Python does', () => {
    const now = 1_700_000_000
    const future = f.encrypt('x', { now: now + 3600 })
    expect(f.decryptString(future, { now })).toBe('x')
    expect(() => f.decrypt(future, { now, ttlSec: 60 })).toThrow(expect.objectContaining({ code: 'future-timestamp' }))
    expect(f.decryptString(f.encrypt('x', { now: now + 60 }), { now, ttlSec: 60 })).toBe('x')

    const old = f.encrypt('x', { now: now - 120 })
    expect(f.decryptString(old, { now })).toBe('x')
    expect(f.decryptString(old, { now, ttlSec: 120 })).toBe('x')
    expect(() => f.decrypt(old, { now, ttlSec: 119 })).toThrow(expect.objectContaining({ code: 'expired' }))
  })

  it('rejects an IV of the wrong length', () => {
    expect(() => f.encrypt('x', { iv: new Uint8Array(8) })).toThrow(FernetError)
  })
})
