import { describe, expect, it } from 'vitest'
import { withoutKey } from '../../../src/providers/shared/upstream-error.js'

describe('withoutKey', () => {
  const key = 'AbCdEfGh12345678XyZ'
  it('removes a key echoed whole, masked, or as a fragment, and keeps the rest of the message', () => {
    expect(withoutKey(`Incorrect API key provided: ${key}. Find yours at x.`, key)).toBe('Incorrect API key provided: [redacted] Find yours at x.')
    expect(withoutKey('bad key AbCd****5678XyZ here', key)).toBe('bad key [redacted] here')
    expect(withoutKey('key ends 345678XyZ', key)).toBe('key ends [redacted]')
    expect(withoutKey('nothing to see', key)).toBe('nothing to see')
  })
  it('leaves text alone when there is no key', () => {
    expect(withoutKey('text', null)).toBe('text')
  })
})
