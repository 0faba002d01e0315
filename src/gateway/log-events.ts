/**
 * The gateway's events as log lines (one per circuit transition or key health change), passed on to
 * any other sinks (metrics). Key labels only, never secrets.
 */
import type { GatewayEvents } from './events.js'

interface EventLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export function resilienceEvents(logger: EventLogger, ...others: Array<Partial<GatewayEvents> | null | undefined>): GatewayEvents {
  return {
    circuit(change) {
      const line = { event: 'circuit', scope: change.scope, provider: change.provider, key: change.key, from: change.from, to: change.to, reason: change.reason, open_until: iso(change.openUntil) }
      const what = change.key ? `${change.provider}/${change.key}` : change.provider
      if (change.to === 'open') logger.warn(line, `circuit of ${what} opened`)
      else logger.info(line, `circuit of ${what} ${change.to === 'closed' ? 'closed' : 'half-open'}`)
      for (const o of others) o?.circuit?.(change)
    },
    keyHealth(change) {
      const line = { event: 'key_health', provider: change.provider, key: change.key, from: change.from, to: change.to, reason: change.reason, cooldown_until: iso(change.cooldownUntil) }
      const msg = change.to === 'invalid' ? `key ${change.key} of ${change.provider} is invalid` : change.to === 'cooling' ? `key ${change.key} of ${change.provider} is cooling down` : `key ${change.key} of ${change.provider} is usable again`
      if (change.to === 'ok') logger.info(line, msg)
      else logger.warn(line, msg)
      for (const o of others) o?.keyHealth?.(change)
    },
  }
}
