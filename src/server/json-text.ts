/**
 * A JSON body's bytes as the text JSON.parse reads. Node's UTF-8 decoder is slow for a text with any
 * character outside ASCII, as agents' requests have: the whole string is built two bytes a character
 * (docs/performance.md). A JSON text means the same with those characters written as `\u` escapes,
 * and then it is ASCII: the bytes are taken one character each (latin1, a copy), and only the runs of
 * non-ASCII bytes are decoded, each on its own, and escaped.
 *
 * The same text for JSON.parse, value for value, as `bytes.toString('utf8')`:
 * - non-ASCII characters can stand only inside strings in valid JSON, where an escape means the same;
 *   outside one, the escape is as invalid as the character was;
 * - a run of bytes 0x80–0xFF holds whole UTF-8 sequences, since every byte of one is in that range;
 * - after a backslash, an escape would turn an invalid escape sequence (`\é`) into a valid one
 *   (`\\u00e9`): such a body is decoded as it is.
 */
import { isAscii, isUtf8 } from 'node:buffer'
import { BACKSLASH } from '../core/json-chars.js'

const HEX = '0123456789abcdef'

export function jsonText(bytes: Buffer): string {
  if (isAscii(bytes)) return bytes.toString('latin1')
  // Invalid UTF-8 is left to node's decoder and its U+FFFD replacements.
  if (!isUtf8(bytes)) return bytes.toString('utf8')
  const latin1 = bytes.toString('latin1')
  let text = ''
  let copied = 0
  for (let at = nextNonAscii(bytes, 0); at !== -1; at = nextNonAscii(bytes, at)) {
    if (at > 0 && bytes[at - 1] === BACKSLASH) return bytes.toString('utf8')
    let end = at + 1
    while (end < bytes.length && bytes[end]! >= 0x80) end++
    text += latin1.slice(copied, at) + escapeUtf8(latin1, at, end)
    copied = at = end
  }
  return text + latin1.slice(copied)
}

/**
 * The index of the first byte at or after `from` that is not ASCII, or -1: four bytes at a time
 * where the buffer's memory allows it, which is most of the scan.
 */
function nextNonAscii(bytes: Buffer, from: number): number {
  const n = bytes.length
  let i = from
  // to a 4-byte boundary of the underlying memory
  while (i < n && (bytes.byteOffset + i) % 4 !== 0) {
    if (bytes[i]! >= 0x80) return i
    i++
  }
  if (i >= n) return -1
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, (n - i) >> 2)
  let w = 0
  while (w < words.length && (words[w]! & 0x80808080) === 0) w++
  for (i += w * 4; i < n; i++) if (bytes[i]! >= 0x80) return i
  return -1
}

/** Well-formed UTF-8 bytes (`latin1` from `start` to `end`, one character a byte) as `\uXXXX` escapes of their UTF-16 units. */
function escapeUtf8(run: string, start: number, end: number): string {
  let out = ''
  for (let i = start; i < end; ) {
    const b0 = run.charCodeAt(i)
    let cp: number
    if (b0 < 0xe0) {
      cp = ((b0 & 0x1f) << 6) | (run.charCodeAt(i + 1) & 0x3f)
      i += 2
    } else if (b0 < 0xf0) {
      cp = ((b0 & 0x0f) << 12) | ((run.charCodeAt(i + 1) & 0x3f) << 6) | (run.charCodeAt(i + 2) & 0x3f)
      i += 3
    } else {
      cp = ((b0 & 0x07) << 18) | ((run.charCodeAt(i + 1) & 0x3f) << 12) | ((run.charCodeAt(i + 2) & 0x3f) << 6) | (run.charCodeAt(i + 3) & 0x3f)
      i += 4
    }
    if (cp > 0xffff) {
      cp -= 0x10000
      out += unit(0xd800 | (cp >> 10)) + unit(0xdc00 | (cp & 0x3ff))
    } else {
      out += unit(cp)
    }
  }
  return out
}

function unit(c: number): string {
  return '\\u' + HEX[c >> 12]! + HEX[(c >> 8) & 15]! + HEX[(c >> 4) & 15]! + HEX[c & 15]!
}
