/**
 * The bytes an answer object was parsed from, carried beside it under a symbol (invisible to
 * JSON.stringify and to spreading). When an adapter passes the upstream's JSON through unchanged
 * (OpenAI and compatible hosts), the server writes these bytes instead of serialising the object again:
 * for an embedding answer that re-serialisation cost more than everything else the proxy does. An
 * adapter that builds its own answer object simply has none.
 */
const RAW_JSON = Symbol('proxy.rawJson')

/** Marks `value` as parsed from `raw`; only for answers nobody changes after parsing. */
export function attachRawJson(value: unknown, raw: Buffer): void {
  if (value && typeof value === 'object') Object.defineProperty(value, RAW_JSON, { value: raw })
}

export function rawJsonOf(value: unknown): Buffer | undefined {
  return value && typeof value === 'object' ? ((value as Record<symbol, Buffer | undefined>)[RAW_JSON]) : undefined
}
