/**
 * What the gateway tells the outside world about upstream health. A plain typed callback interface:
 * the server logs these, and metrics can subscribe to the same calls. Callbacks run synchronously on
 * the request path, so they must be cheap and must not throw.
 */
import type { CircuitState } from './circuit-breaker.js'

/** A key's condition: `cooling` after a 429 until its cooldown ends, `invalid` after a 401/403. */
export type KeyCondition = 'ok' | 'cooling' | 'invalid'

export interface CircuitChange {
  scope: 'provider' | 'key'
  provider: string
  /** the key's label (never its secret); null for a provider circuit */
  key: string | null
  keyId: number | null
  from: CircuitState
  to: CircuitState
  /** e.g. '5 consecutive failures', 'failure rate 60% over 30 s', 'probe succeeded', 'operator: open' */
  reason: string
  openUntil: number | null
  at: number
}

export interface KeyHealthChange {
  provider: string
  key: string
  keyId: number
  from: KeyCondition
  to: KeyCondition
  reason: string
  cooldownUntil: number | null
  at: number
}

export interface GatewayEvents {
  circuit(change: CircuitChange): void
  keyHealth(change: KeyHealthChange): void
}
