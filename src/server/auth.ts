import { hashClientKey } from '../core/ids.js'
import { invalidApiKey, permissionDenied } from '../core/errors.js'
import type { ClientConfig, ConfigSnapshot } from '../store/snapshot.js'

const NO_CLIENTS_HINT = " This proxy has no client keys yet: create one with 'proxy clients add NAME' (or start it with 'proxy serve --demo')."

/** `Authorization: Bearer <key>`, or Azure-style `api-key`, so both OpenAI and Azure SDKs work unchanged. */
export function bearerToken(headers: Headers): string | null {
  const auth = headers.get('authorization')
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    return m ? m[1]! : null
  }
  return headers.get('api-key')
}

export function authenticate(headers: Headers, snapshot: ConfigSnapshot, now = Date.now()): ClientConfig {
  const hint = snapshot.clientsByHash.size === 0 ? NO_CLIENTS_HINT : ''
  const token = bearerToken(headers)
  if (!token) {
    throw invalidApiKey(`You didn't provide an API key. Send your proxy client key as 'Authorization: Bearer KEY'.${hint}`)
  }
  const client = snapshot.clientsByHash.get(hashClientKey(token))
  if (!client) throw invalidApiKey(`Incorrect API key provided. Use a client key issued by this proxy ('proxy clients add').${hint}`)
  if (client.revoked) throw invalidApiKey(`The API key of client '${client.name}' has been revoked.`)
  if (client.expiresAt !== null && client.expiresAt <= now) throw invalidApiKey(`The API key of client '${client.name}' has expired.`)
  return client
}

export function requireAdmin(client: ClientConfig): void {
  if (client.role !== 'admin') throw permissionDenied(`Client '${client.name}' is not an admin; this endpoint needs an admin key.`, 'admin_required')
}
