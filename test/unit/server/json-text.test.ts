import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { jsonText } from '../../../src/server/json-text.js'

const AGENTS = path.resolve(__dirname, '../../../../shared/testdata/agents')

/** What JSON.parse makes of node's own decoding of the bytes: a value, or the fact that it throws. */
function parsed(text: string): { value: unknown } | { throws: true } {
  try {
    return { value: JSON.parse(text) }
  } catch {
    return { throws: true }
  }
}

function expectSameAsNode(bytes: Buffer): void {
  expect(parsed(jsonText(bytes))).toStrictEqual(parsed(bytes.toString('utf8')))
}

/** `bytes` copied to each of the four alignments of a larger buffer, so the word-wise scan starts at each. */
function atEveryOffset(bytes: Buffer): Buffer[] {
  return [0, 1, 2, 3].map((offset) => {
    const big = Buffer.alloc(bytes.length + 8)
    bytes.copy(big, offset)
    return big.subarray(offset, offset + bytes.length)
  })
}

describe('jsonText', () => {
  it('gives an ASCII body as it is', () => {
    const body = Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"hi \\u00e9"}]}')
    expect(jsonText(body)).toBe(body.toString('utf8'))
  })

  it('writes non-ASCII characters as escapes, so the text is one byte a character', () => {
    const body = Buffer.from(JSON.stringify({ text: 'é — 😀 中文', 'clé': 'ü' }))
    const text = jsonText(body)
    expect(/^[\x00-\x7f]*$/.test(text)).toBe(true)
    expect(JSON.parse(text)).toStrictEqual({ text: 'é — 😀 中文', 'clé': 'ü' })
  })

  it('parses every character of 1 to 4 UTF-8 bytes, at any position and alignment, to what node decodes', () => {
    const samples = ['é', 'ß', '—', '…', '中', '€', '😀', '𝄞', '\u2028', '\uFFFD', 'é—😀中']
    for (const s of samples) {
      for (const doc of [`"${s}"`, `{"${s}":"${s}x"}`, `["a${s}", "${s}${s}", "\\n${s}\\""]`, `{"k":"${'x'.repeat(13)}${s}${'y'.repeat(7)}"}`]) {
        for (const bytes of atEveryOffset(Buffer.from(doc))) {
          expect(jsonText(bytes).length).toBeGreaterThan(0)
          expectSameAsNode(bytes)
        }
      }
    }
  })

  it('keeps what node makes of malformed UTF-8 (U+FFFD replacements)', () => {
    const cases = [
      Buffer.from([0x22, 0xff, 0x22]),
      Buffer.from([0x22, 0xe2, 0x80, 0x22]), // a 3-byte sequence cut short
      Buffer.from([0x22, 0xc3, 0x41, 0x22]), // a lead byte before ASCII
      Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), // an encoded surrogate
      Buffer.from([0x22, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x22]),
    ]
    for (const bytes of cases) {
      expect(jsonText(bytes)).toBe(bytes.toString('utf8'))
      expectSameAsNode(bytes)
    }
  })

  it('refuses what JSON.parse refuses: an invalid escape before a non-ASCII character, a character outside a string', () => {
    for (const doc of ['"\\é"', '{"a":"x\\\\\\é"}', '{"a":1}\u00a0', '{\u00a0"a":1}', '["é",é]']) {
      const bytes = Buffer.from(doc)
      expect(parsed(bytes.toString('utf8'))).toStrictEqual({ throws: true })
      expect(parsed(jsonText(bytes))).toStrictEqual({ throws: true })
    }
    // an even run of backslashes is an escaped backslash: valid, and the same value
    expectSameAsNode(Buffer.from('{"a":"x\\\\é"}'))
  })

  it('gives the same values as node for random documents and random corruptions of them', () => {
    const alphabet = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', 'é', '—', '😀', '中', '\u0000', '\u007f', '\u0080', '\uFFFF']
    let seed = 7
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const str = () => Array.from({ length: rand(12) }, () => alphabet[rand(alphabet.length)]).join('')
    for (let i = 0; i < 400; i++) {
      const doc = { [str()]: str(), list: [str(), { [str()]: str() }, rand(1000)], n: rand(5) === 0 ? null : str() }
      const bytes = Buffer.from(JSON.stringify(doc))
      expect(JSON.parse(jsonText(bytes))).toStrictEqual(doc)
      const broken = Buffer.from(bytes)
      broken[rand(broken.length)] = rand(256)
      expectSameAsNode(broken)
    }
  })

  it.skipIf(!existsSync(AGENTS))('parses the real agents\' requests as node does', () => {
    for (const file of ['claude-code.json', 'codex.json']) {
      const requests = JSON.parse(readFileSync(path.join(AGENTS, file), 'utf8')) as Array<{ body: unknown }>
      for (const r of requests) {
        const bytes = Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body))
        expect(bytes.length).toBeGreaterThan(10_000)
        expect(JSON.parse(jsonText(bytes))).toStrictEqual(JSON.parse(bytes.toString('utf8')))
      }
    }
  })
})
