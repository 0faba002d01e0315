import { invalidApiKey } from '../../core/errors.js'
import type { ConfigSnapshot } from '../../core/config.js'
import { authenticate, bearerToken, requireAdmin } from '../auth.js'
import type { LocalAccess } from './local-access.js'

/** Who made an admin call: an admin client, or the CLI on this machine through the local token. */
export interface AdminPrincipal {
  name: string
  via: 'client' | 'local-token'
}

/**
 * Admin calls take an admin client key or this server's local token (`<dataDir>/admin.token`).
 * No key: 401; an unknown, revoked or expired key: 401; a user key: 403. All in OpenAI's error shape.
 */
export function authenticateAdmin(headers: Headers, snapshot: ConfigSnapshot, local: LocalAccess | null): AdminPrincipal {
  const token = bearerToken(headers)
  if (!token) {
    throw invalidApiKey("The admin API needs an admin client key ('proxy clients add NAME --role admin') or this server's local token (<data dir>/admin.token), sent as 'Authorization: Bearer KEY'.")
  }
  if (local?.matches(token)) return { name: 'local', via: 'local-token' }
  const client = authenticate(headers, snapshot)
  requireAdmin(client)
  return { name: client.name, via: 'client' }
}
