/**
 * The client headers a native call forwards (CallContext.passHeaders), less the ones the adapter must own:
 * credentials (the upstream key replaces the client's) and connection headers (this hop's, not the next's).
 */
const NEVER_FORWARDED = new Set([
  'authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'cookie',
  'host', 'content-length', 'content-type', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'expect', 'accept-encoding',
])

export function forwardedHeaders(pass: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (!pass) return out
  for (const [name, value] of Object.entries(pass)) {
    const key = name.toLowerCase()
    if (!NEVER_FORWARDED.has(key) && typeof value === 'string') out[key] = value
  }
  return out
}

/** Comma-separated token lists (anthropic-beta) joined, each token once, in the order first seen. */
export function mergeTokenLists(...lists: Array<string | undefined>): string | undefined {
  const tokens = new Set<string>()
  for (const list of lists) for (const token of list?.split(',') ?? []) if (token.trim()) tokens.add(token.trim())
  return tokens.size > 0 ? [...tokens].join(',') : undefined
}

/** Header names lowercased, so settings and client headers meet under one spelling. */
export function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
}
