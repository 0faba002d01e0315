/**
 * The client's request bytes, kept beside the validated request, so that a request passed on to an
 * upstream that speaks its API goes out as the client's own bytes: every top-level member the proxy
 * did not change is copied from them, and only the members it set (the upstream's model name, `stream`)
 * are serialised. An agent's request is tens of kilobytes of tools and history; serialising it again
 * and encoding that text cost more than everything else the proxy did for it (docs/performance.md).
 *
 * It holds because the request schemas give back what they were given (loose objects, no defaults or
 * transforms; test/unit/core/request-bytes.test.ts checks them on the agents' real requests), and
 * because a request is never changed in place below its top level: a member is either the value
 * the request had when its bytes were kept (the same object, or the same primitive) or it is
 * serialised again. Changes are made on copies, with `revised`.
 */
import { isUtf8 } from 'node:buffer'
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from './json-chars.js'

const SOURCE = Symbol('proxy.requestBytes')

interface Source {
  readonly bytes: Buffer
  /** each top-level member's value when the bytes were kept */
  readonly values: Map<string, unknown>
  /** each top-level member's byte range, key to end of value (the last of a repeated key, as JSON.parse keeps it); found on first use, null when the bytes cannot be used */
  members?: Map<string, readonly [number, number]> | null
}

type WithSource = { [SOURCE]?: Source }

/** Below this size JSON.stringify of the request is as fast as copying its members (docs/performance.md). */
export const KEEP_REQUEST_BYTES_FROM = 2048

/** Ties `request` (validated; the same content as `bytes`, a JSON object) to the bytes it was parsed from. */
export function keepRequestBytes(request: object, bytes: Buffer): void {
  const values = new Map<string, unknown>()
  for (const key of Object.keys(request)) values.set(key, (request as Record<string, unknown>)[key])
  Object.defineProperty(request, SOURCE, { value: { bytes, values } satisfies Source, configurable: true })
}

/** `{ ...request, ...changes }`, still tied to the client's bytes for the members it did not change. */
export function revised<T extends object, C extends object>(request: T, changes: C): Omit<T, keyof C> & C {
  const copy = { ...request, ...changes }
  const source = (request as WithSource)[SOURCE]
  if (source) Object.defineProperty(copy, SOURCE, { value: source, configurable: true })
  return copy
}

/**
 * The JSON text of a request body: what JSON.stringify gives, except that the members unchanged since
 * the client sent them are the client's own bytes (the same JSON values, byte for byte as sent).
 */
export function requestJson(body: unknown): string | Buffer {
  const source = body !== null && typeof body === 'object' ? (body as WithSource)[SOURCE] : undefined
  if (!source) return JSON.stringify(body)
  if (source.members === undefined) source.members = isUtf8(source.bytes) ? memberRanges(source.bytes) : null
  const members = source.members
  if (!members) return JSON.stringify(body)
  const parts: Buffer[] = [OPEN]
  for (const key of Object.keys(body as object)) {
    const value = (body as Record<string, unknown>)[key]
    // what JSON.stringify leaves out of an object
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue
    if (parts.length > 1) parts.push(SEPARATOR)
    const range = members.get(key)
    if (range && source.values.get(key) === value) parts.push(source.bytes.subarray(range[0], range[1]))
    else parts.push(Buffer.from(`${JSON.stringify(key)}:${JSON.stringify(value)}`))
  }
  parts.push(CLOSE)
  return Buffer.concat(parts)
}

const OPEN = Buffer.from('{')
const SEPARATOR = Buffer.from(',')
const CLOSE = Buffer.from('}')

/**
 * The byte range of each member of a JSON object's text, by its key. The text was already parsed by
 * JSON.parse, so it is valid; anything else found here (a top level that is not an object) gives null.
 */
function memberRanges(bytes: Buffer): Map<string, readonly [number, number]> | null {
  const members = new Map<string, readonly [number, number]>()
  let i = skipSpace(bytes, 0)
  if (bytes[i] !== OPEN_OBJECT) return null
  i = skipSpace(bytes, i + 1)
  if (bytes[i] === CLOSE_OBJECT) return members
  for (;;) {
    if (bytes[i] !== QUOTE) return null
    const start = i
    const keyEnd = stringEnd(bytes, i)
    if (keyEnd < 0) return null
    const key = keyText(bytes, start, keyEnd)
    i = skipSpace(bytes, keyEnd)
    if (bytes[i] !== COLON) return null
    const end = valueEnd(bytes, skipSpace(bytes, i + 1))
    if (end < 0) return null
    members.set(key, [start, end])
    i = skipSpace(bytes, end)
    if (bytes[i] === CLOSE_OBJECT) return members
    if (bytes[i] !== COMMA) return null
    i = skipSpace(bytes, i + 1)
  }
}

/** JSON's four whitespace characters */
const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

function skipSpace(bytes: Buffer, i: number): number {
  while (isSpace(bytes[i])) i++
  return i
}

/** The index just past the string that opens at `i`, or -1 when it does not close. */
function stringEnd(bytes: Buffer, i: number): number {
  // the closing quote is the next one after an even run of backslashes (`\\"` closes, `\"` does not)
  for (;;) {
    i = bytes.indexOf(QUOTE, i + 1)
    if (i === -1) return -1
    let k = i - 1
    while (bytes[k] === BACKSLASH) k--
    if ((i - k) % 2 === 1) return i + 1
  }
}

/** The key a quoted string stands for (escapes read as JSON.parse reads them). */
function keyText(bytes: Buffer, start: number, end: number): string {
  const inner = bytes.toString('utf8', start + 1, end - 1)
  return inner.includes('\\') ? (JSON.parse(bytes.toString('utf8', start, end)) as string) : inner
}

/** The index just past the value that starts at `i`, or -1. */
function valueEnd(bytes: Buffer, i: number): number {
  const c = bytes[i]
  if (c === QUOTE) return stringEnd(bytes, i)
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    const n = bytes.length
    let depth = 0
    for (; i < n; i++) {
      const b = bytes[i]
      if (b === QUOTE) {
        i = stringEnd(bytes, i) - 1
        if (i < 0) return -1
      } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        depth++
      } else if ((b === CLOSE_OBJECT || b === CLOSE_ARRAY) && --depth === 0) {
        return i + 1
      }
    }
    return -1
  }
  // a number, true, false or null: up to the next delimiter
  const n = bytes.length
  while (i < n) {
    const b = bytes[i]
    if (b === COMMA || b === CLOSE_OBJECT || b === CLOSE_ARRAY || isSpace(b)) break
    i++
  }
  return i
}
