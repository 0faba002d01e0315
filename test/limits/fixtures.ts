import { withPolicyDefaults, type PolicyDocument } from '../../src/core/policy-schema.js'
import type { WindowLimit } from '../../src/limits/types.js'
import type { ClientConfig, ConfigSnapshot } from '../../src/store/snapshot.js'

export function client(id: number, over: Partial<ClientConfig> = {}): ClientConfig {
  return { id, name: `client-${id}`, role: 'user', models: null, expiresAt: null, revoked: false, limits: [], dailyTokens: null, monthlyTokens: null, ...over }
}

export const rpm = (limit: number): WindowLimit => ({ kind: 'requests', limit, windowMs: 60_000 })
export const tpm = (limit: number): WindowLimit => ({ kind: 'tokens', limit, windowMs: 60_000 })

export function snapshot(clients: ClientConfig[], global: PolicyDocument = {}): ConfigSnapshot {
  return {
    loadedAt: Date.now(),
    providers: new Map(),
    clientsByHash: new Map(clients.map((c) => [`hash-${c.id}`, c])),
    routes: new Map(),
    policies: new Map([['global', global]]),
    globalPolicy: withPolicyDefaults(global),
    problems: [],
  }
}
