/**
 * The bytes an answer object was parsed from, carried beside it under a symbol (invisible to
 * JSON.stringify and to spreading). When an adapter passes the upstream's JSON through unchanged
 * (OpenAI and compatible hosts), the server writes these bytes instead of serialising the object again:
 * for an embedding answer that re-serialisation cost more than everything else the proxy does; a stream
 * chunk is written as the upstream's event data. An adapter that builds its own objects simply has none.
 */
const RAW_JSON = Symbol('proxy.rawJson')

/**
 * Marks `value` as parsed from `raw` (an answer's bytes, or a stream event's data). Whoever changes the
 * object afterwards must call forgetRawJson, or the client gets the unchanged text.
 */
export function attachRawJson(value: unknown, raw: Buffer | string): void {
  if (value && typeof value === 'object') Object.defineProperty(value, RAW_JSON, { value: raw, configurable: true })
}

export function rawJsonOf(value: unknown): Buffer | string | undefined {
  return value && typeof value === 'object' ? ((value as Record<symbol, Buffer | string | undefined>)[RAW_JSON]) : undefined
}

/** The object was changed after parsing: it is serialised again from now on. */
export function forgetRawJson(value: unknown): void {
  if (value && typeof value === 'object') delete (value as Record<symbol, unknown>)[RAW_JSON]
}
