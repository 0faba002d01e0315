import { describe, expect, it } from 'vitest'
import { exceedsJsonDepth } from '../../../src/server/json-depth.js'

/** The depth JSON.parse sees, for comparison. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0
  const children = Array.isArray(value) ? value : Object.values(value)
  return 1 + children.reduce<number>((max, child) => Math.max(max, depthOf(child)), 0)
}

describe('exceedsJsonDepth', () => {
  it('counts arrays and objects inside one another, {} being one level', () => {
    expect(exceedsJsonDepth('{}', 1)).toBe(false)
    expect(exceedsJsonDepth('{"a":[]}', 1)).toBe(true)
    expect(exceedsJsonDepth('{"a":[1,{"b":2}],"c":[[3]]}', 3)).toBe(false)
    expect(exceedsJsonDepth('{"a":[1,{"b":2}],"c":[[3]]}', 2)).toBe(true)
    // siblings do not add up
    expect(exceedsJsonDepth(`[${'[],'.repeat(1000)}[]]`, 2)).toBe(false)
    expect(exceedsJsonDepth('1', 1)).toBe(false)
  })

  it('agrees with JSON.parse on strings full of brackets, quotes and backslashes', () => {
    const strings = ['[[[{{{', 'say "[["', 'ends in \\', '\\"[', '\\\\', '\\\\\\"{{', '"', '\\u005b[', 'ünïcødé [ 🙂 {']
    for (const s of strings) {
      const text = JSON.stringify({ a: s, b: [[s]], c: { d: s } })
      const depth = depthOf(JSON.parse(text))
      expect(exceedsJsonDepth(text, depth), text).toBe(false)
      expect(exceedsJsonDepth(text, depth - 1), text).toBe(true)
    }
  })

  it('leaves malformed JSON to JSON.parse', () => {
    expect(exceedsJsonDepth('{"unterminated: [[[[[[', 2)).toBe(false)
    expect(exceedsJsonDepth(']]]]{}', 1)).toBe(false)
  })
})
