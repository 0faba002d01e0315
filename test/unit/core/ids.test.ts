import { describe, expect, it } from 'vitest'
import { acceptRequestId, newClientKey, newRequestId, randomBase62 } from '../../../src/core/ids.js'

describe('ids', () => {
  it('request ids are req_ and 24 base62 characters, unique, and sort by time', async () => {
    const first = newRequestId()
    expect(first).toMatch(/^req_[0-9A-Za-z]{24}$/)
    const many = new Set(Array.from({ length: 20_000 }, () => newRequestId()))
    expect(many.size).toBe(20_000)
    await new Promise((r) => setTimeout(r, 5))
    const later = newRequestId()
    expect(later > first).toBe(true)
    // the first 8 characters after the prefix are the time: equal within one millisecond's neighbours
    expect(later.slice(4, 12) > first.slice(4, 12)).toBe(true)
  })

  it('random base62 text has the asked length and uses the whole alphabet evenly', () => {
    const text = randomBase62(62_000)
    expect(text).toHaveLength(62_000)
    const counts = new Map<string, number>()
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1)
    expect(counts.size).toBe(62)
    for (const n of counts.values()) expect(n).toBeGreaterThan(800) // 1000 expected per character
    expect(newClientKey()).toMatch(/^sk-proxy-[0-9A-Za-z]{40}$/)
  })

  it('echoes a sane client request id and replaces anything else', () => {
    expect(acceptRequestId('abc-123.x:y_z')).toBe('abc-123.x:y_z')
    expect(acceptRequestId('bad id\n')).toMatch(/^req_/)
    expect(acceptRequestId(null)).toMatch(/^req_/)
  })
})
