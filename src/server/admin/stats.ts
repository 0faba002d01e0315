/**
 * GET /admin/v1/stats: the live windows (src/telemetry/live-stats.ts) joined with the gateway's view of
 * each provider and key (circuit, health, cooldown, in-flight). Everything comes from memory; nothing
 * here reads the store. `proxy top` draws this document and nothing else.
 */
import type { GatewayHealth } from '../../gateway/gateway.js'
import type { ConnectionFigures } from '../connections.js'
import type { LiveFigures, LiveKeyFigures, LiveProviderFigures, Percentiles, RecentRequest } from '../../telemetry/live-stats.js'

export interface CircuitFigures {
  state: 'closed' | 'open' | 'half_open'
  /** an operator's `proxy circuit open|close`, else null */
  override: 'open' | 'closed' | null
  /** epoch ms, while open */
  openUntil: number | null
}

export interface KeyStats {
  id: number
  label: string
  /** the operator's switch */
  state: 'active' | 'disabled'
  health: 'ok' | 'cooling' | 'invalid'
  reason: string | null
  /** epoch ms, while cooling down after a 429 */
  cooldownUntil: number | null
  /** the gateway would pick it now */
  available: boolean
  circuit: CircuitFigures
  inFlight: number
  requests: number
  errors: number
  latencyMsAvg: number | null
}

export interface ProviderStats {
  name: string
  type: string
  enabled: boolean
  circuit: CircuitFigures
  inFlight: number
  /** upstream attempts over the last minute; a request that fell back counts at each provider it tried */
  requests: number
  errors: number
  latencyMs: Percentiles | null
  keys: KeyStats[]
}

/** Which server answered, and whether its store answers it: several instances share one store behind a load balancer. */
export interface InstanceFigures {
  /** hostname:port, unique in a fleet */
  id: string
  pid: number
  store: { kind: 'sqlite' | 'postgres'; ok: boolean; detail: string | null }
}

export interface StatsReport extends Omit<LiveFigures, 'providers'> {
  object: 'proxy.stats'
  /** absent from older servers */
  instance?: InstanceFigures
  /** the server stopped accepting requests and is finishing open ones */
  draining: boolean
  /** client connections open now, the cap, and those refused at the cap since the start (absent from older servers) */
  connections?: ConnectionFigures
  providers: ProviderStats[]
  recent: RecentRequest[]
}

export function buildStatsReport(live: LiveFigures, health: GatewayHealth, draining: boolean, connections?: ConnectionFigures, instance?: InstanceFigures): StatsReport {
  const figures = new Map<string, LiveProviderFigures>(live.providers.map((p) => [p.name, p]))
  const providers: ProviderStats[] = health.providers.map((p) => {
    const f = figures.get(p.name)
    const keyFigures = new Map<string, LiveKeyFigures>((f?.keys ?? []).map((k) => [k.label, k]))
    return {
      name: p.name,
      type: p.type,
      enabled: p.enabled,
      circuit: circuit(p.circuit),
      inFlight: p.inFlight,
      requests: f?.requests ?? 0,
      errors: f?.errors ?? 0,
      latencyMs: f?.latencyMs ?? null,
      keys: p.keys.map((k) => {
        const kf = keyFigures.get(k.label)
        return {
          id: k.id,
          label: k.label,
          state: k.state,
          health: k.health,
          reason: k.reason,
          cooldownUntil: k.cooldownUntil,
          available: k.available,
          circuit: circuit(k.circuit),
          inFlight: k.inFlight,
          requests: kf?.requests ?? 0,
          errors: kf?.errors ?? 0,
          latencyMsAvg: kf?.latencyMsAvg ?? null,
        }
      }),
    }
  })
  return { object: 'proxy.stats', instance, ...live, draining, connections, providers }
}

function circuit(c: { state: CircuitFigures['state']; override: CircuitFigures['override']; openUntil: number | null }): CircuitFigures {
  return { state: c.state, override: c.override, openUntil: c.openUntil }
}
