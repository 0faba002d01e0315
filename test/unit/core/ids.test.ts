import { describe, expect, it } from 'vitest'
import { acceptRequestId, newClientKey, newRequestId, randomBase62, timeOrderedId } from '../../../src/core/ids.js'
import { newItemId, newResponseId, responseIdOfItem } from '../../../src/server/responses/output.js'

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

  it('time-ordered ids: the prefix, the time as 8 characters, then random ones; later ids sort after', async () => {
    const before = Date.now()
    const id = timeOrderedId('x_', 20)
    expect(id).toMatch(/^x_[0-9A-Za-z]{20}$/)
    // the 8 time characters decode to the clock at the call
    let ms = 0
    for (const c of id.slice(2, 10)) ms = ms * 62 + '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'.indexOf(c)
    expect(ms).toBeGreaterThanOrEqual(before)
    expect(ms).toBeLessThanOrEqual(Date.now())
    expect(new Set(Array.from({ length: 20_000 }, () => timeOrderedId('x_', 20))).size).toBe(20_000)
    await new Promise((r) => setTimeout(r, 5))
    expect(timeOrderedId('x_', 20) > id).toBe(true)
  })

  it('response ids keep their shape, sort by time, and their items still name them', async () => {
    const earlier = Array.from({ length: 20 }, () => newResponseId())
    for (const id of earlier) expect(id).toMatch(/^resp_[0-9A-Za-z]{32}$/)
    await new Promise((r) => setTimeout(r, 5))
    const later = newResponseId()
    // random ids would each sort after a given one by chance, half the time
    for (const id of earlier) expect(later > id).toBe(true)
    const item = newItemId('msg', later)
    expect(item).toMatch(/^msg_[0-9A-Za-z]{40}$/)
    expect(responseIdOfItem(item)).toBe(later)
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
