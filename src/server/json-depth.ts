/**
 * The nesting check every JSON body passes before JSON.parse. V8 parses deep nesting far more slowly
 * than its size suggests (9.5 MB of brackets held the event loop for seconds), and the proxy's own
 * JSON.stringify of such a value overflows the stack: a client must not reach either. One pass, no
 * allocation: brackets are counted outside strings, and a string is skipped to its closing quote.
 */
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from '../core/json-chars.js'

export const DEFAULT_MAX_JSON_DEPTH = 64

/**
 * True when `text` nests arrays and objects more than `max` levels deep (`{}` is one level). Not a
 * validator: malformed JSON is left for JSON.parse to refuse.
 */
export function exceedsJsonDepth(text: string, max: number): boolean {
  let depth = 0
  for (let i = 0, n = text.length; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      // the closing quote is the next one preceded by an even run of backslashes (`\\"` ends, `\"` does not)
      for (;;) {
        i = text.indexOf('"', i + 1)
        if (i === -1) return false
        let k = i - 1
        while (text.charCodeAt(k) === BACKSLASH) k--
        if ((i - k) % 2 === 1) break
      }
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return false
}
