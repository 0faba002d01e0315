/**
 * The bridge between the gateway's resilience state (circuit breakers, key health) and metrics.
 * The gateway exposes it in two ways, both optional: `health()`, read at scrape time for the gauges, and
 * an events sink called on every change, for the transition counters. This module only reads: it never
 * imports the gateway, so the telemetry works (reporting nothing) against a gateway without either.
 */

export type CircuitState = 'closed' | 'open' | 'half_open'

export interface CircuitSample {
  provider: string
  /** the key label when circuits are kept per key; '' when per provider (or per target) */
  key: string
  state: CircuitState
}

export interface KeySample {
  provider: string
  key: string
  healthy: boolean
}

export interface HealthSamples {
  circuits: CircuitSample[]
  keys: KeySample[]
}

/** What the metrics need from the gateway, structurally; `typeof gateway.health === 'function'` decides. */
export interface HealthSource {
  health(): unknown
}

export function hasHealth(value: unknown): value is HealthSource {
  return !!value && typeof (value as { health?: unknown }).health === 'function'
}

/**
 * Change events, shaped like the gateway's `GatewayEvents` (src/gateway/events.ts) but declared here so
 * telemetry does not depend on the gateway; the compiler checks the fit where start.ts passes it.
 */
export interface GatewayEventSink {
  circuit(change: { provider: string; key: string | null; from: string; to: string }): void
  keyHealth(change: { provider: string; key: string; from: string; to: string }): void
}

export function normalizeCircuitState(value: unknown): CircuitState | null {
  if (typeof value !== 'string') return null
  const v = value.toLowerCase().replace('-', '_')
  return v === 'closed' || v === 'open' || v === 'half_open' ? v : v === 'halfopen' ? 'half_open' : null
}

/**
 * Reads whatever `health()` returned into samples, tolerating the shapes a health report plausibly has:
 * `{ providers: [{ name|provider, circuit|state, keys: [{ label|key, healthy|state }] }] }`,
 * `{ circuits: [{ provider, key?, state }], keys: [{ provider, label|key, healthy|state }] }`, or a bare
 * array of providers. Unknown shapes read as nothing rather than throwing during a scrape.
 */
export function readHealth(raw: unknown): HealthSamples {
  const out: HealthSamples = { circuits: [], keys: [] }
  if (!raw || typeof raw !== 'object') return out
  const r = raw as Record<string, unknown>
  const providers = Array.isArray(raw) ? raw : Array.isArray(r.providers) ? r.providers : null
  if (providers) {
    for (const p of providers as Array<Record<string, unknown>>) {
      if (!p || typeof p !== 'object') continue
      const provider = str(p.name) ?? str(p.provider)
      if (!provider) continue
      const circuit = p.circuit && typeof p.circuit === 'object' ? (p.circuit as Record<string, unknown>).state : (p.circuit ?? p.state)
      const state = normalizeCircuitState(circuit)
      if (state) out.circuits.push({ provider, key: '', state })
      if (Array.isArray(p.keys)) for (const k of p.keys as unknown[]) pushKey(out, provider, k)
    }
  }
  if (Array.isArray(r.circuits)) {
    for (const c of r.circuits as Array<Record<string, unknown>>) {
      const provider = str(c?.provider)
      const state = normalizeCircuitState(c?.state)
      if (provider && state) out.circuits.push({ provider, key: str(c.key) ?? str(c.label) ?? '', state })
    }
  }
  if (Array.isArray(r.keys)) for (const k of r.keys as Array<Record<string, unknown>>) pushKey(out, str(k?.provider), k)
  return out
}

function pushKey(out: HealthSamples, provider: string | null, raw: unknown): void {
  if (!provider || !raw || typeof raw !== 'object') return
  const k = raw as Record<string, unknown>
  const key = str(k.label) ?? str(k.key)
  if (!key) return
  const healthy = typeof k.healthy === 'boolean' ? k.healthy : typeof k.state === 'string' ? isHealthyState(k.state) : null
  if (healthy !== null) out.keys.push({ provider, key, healthy })
  const circuit = normalizeCircuitState(k.circuit && typeof k.circuit === 'object' ? (k.circuit as Record<string, unknown>).state : k.circuit)
  if (circuit) out.circuits.push({ provider, key, state: circuit })
}

export function isHealthyState(state: string): boolean {
  return state === 'healthy' || state === 'active' || state === 'ok' || state === 'closed'
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null
}
