import { hashClientKey } from '../core/ids.js'
import { invalidApiKey, permissionDenied } from '../core/errors.js'
import type { ClientConfig, ConfigSnapshot } from '../core/config.js'

const NO_CLIENTS_HINT = " This proxy has no client keys yet: create one with 'proxy clients add NAME' (or start it with 'proxy serve --demo')."

/**
 * `Authorization: Bearer <key>`, or Azure-style `api-key`, or Anthropic-style `x-api-key`, so the OpenAI,
 * Azure and Anthropic SDKs (and Claude Code) work unchanged.
 */
export function bearerToken(headers: Headers): string | null {
  return tokenFrom(headers.get('authorization'), headers.get('api-key') ?? headers.get('x-api-key'))
}

/** The same, from the header values (node:http hands them over as plain strings); `apiKey` is api-key or x-api-key. */
export function tokenFrom(authorization: string | null | undefined, apiKey: string | null | undefined): string | null {
  if (authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    return m ? m[1]! : null
  }
  return apiKey ?? null
}

// Known tokens of the current snapshot, so a client's key is hashed once rather than on every request.
// Only keys that matched a client get in (a stranger's guesses cannot grow it), and it is bounded anyway;
// a new snapshot (a key rotated, revoked or added) starts a new one.
const CACHE_LIMIT = 10_000
const knownTokens = new WeakMap<ConfigSnapshot, Map<string, ClientConfig>>()

function lookup(snapshot: ConfigSnapshot, token: string): ClientConfig | undefined {
  let cache = knownTokens.get(snapshot)
  const hit = cache?.get(token)
  if (hit) return hit
  const client = snapshot.clientsByHash.get(hashClientKey(token))
  if (client) {
    if (!cache) knownTokens.set(snapshot, (cache = new Map()))
    if (cache.size >= CACHE_LIMIT) cache.clear()
    cache.set(token, client)
  }
  return client
}

export function authenticate(headers: Headers, snapshot: ConfigSnapshot, now = Date.now()): ClientConfig {
  return authenticateToken(bearerToken(headers), snapshot, now)
}

export function authenticateToken(token: string | null, snapshot: ConfigSnapshot, now = Date.now()): ClientConfig {
  if (!token) {
    throw invalidApiKey(`You didn't provide an API key. Send your proxy client key as 'Authorization: Bearer KEY' (or 'x-api-key: KEY').${hint(snapshot)}`)
  }
  const client = lookup(snapshot, token)
  if (!client) throw invalidApiKey(`Incorrect API key provided. Use a client key issued by this proxy ('proxy clients add').${hint(snapshot)}`)
  if (client.revoked) throw invalidApiKey(`The API key of client '${client.name}' has been revoked.`)
  if (client.expiresAt !== null && client.expiresAt <= now) throw invalidApiKey(`The API key of client '${client.name}' has expired.`)
  return client
}

const hint = (snapshot: ConfigSnapshot) => (snapshot.clientsByHash.size === 0 ? NO_CLIENTS_HINT : '')

export function requireAdmin(client: ClientConfig): void {
  if (client.role !== 'admin') throw permissionDenied(`Client '${client.name}' is not an admin; this endpoint needs an admin key.`, 'admin_required')
}
