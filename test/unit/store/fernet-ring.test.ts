import { describe, expect, it } from 'vitest'
import { createFernet, createFernetRing, FernetError, generateFernetKey } from '../../../src/store/fernet.js'

describe('Fernet key ring', () => {
  const [newKey, oldKey, otherKey] = [generateFernetKey(), generateFernetKey(), generateFernetKey()]

  it('encrypts with the newest key only', () => {
    const token = createFernetRing([newKey, oldKey]).encrypt('sk-live-1')
    expect(createFernet(newKey).decryptString(token)).toBe('sk-live-1')
    expect(() => createFernet(oldKey).decryptString(token)).toThrow(FernetError)
  })

  it('still reads tokens made under an older key, and says which key opened each', () => {
    const ring = createFernetRing([newKey, oldKey])
    const old = createFernet(oldKey).encrypt('sk-old')
    const fresh = ring.encrypt('sk-new')
    expect(ring.decryptString(old)).toBe('sk-old')
    expect(ring.decrypt(old).toString('utf8')).toBe('sk-old')
    expect(ring.keyIndexOf(fresh)).toBe(0)
    expect(ring.keyIndexOf(old)).toBe(1)
    expect(ring.keyIndexOf(createFernet(otherKey).encrypt('x'))).toBe(-1)
    expect(ring.size).toBe(2)
  })

  it('fails as a single key does when no key opens a token, and at once for a malformed one', () => {
    const ring = createFernetRing([newKey, oldKey])
    const foreign = createFernet(otherKey).encrypt('x')
    expect(() => ring.decryptString(foreign)).toThrow(expect.objectContaining({ code: 'bad-mac' }))
    expect(() => ring.decryptString('not a token!')).toThrow(expect.objectContaining({ code: 'bad-encoding' }))
  })

  it('needs at least one valid key', () => {
    expect(() => createFernetRing([])).toThrow(FernetError)
    expect(() => createFernetRing([newKey, 'short'])).toThrow(expect.objectContaining({ code: 'bad-key' }))
  })
})
