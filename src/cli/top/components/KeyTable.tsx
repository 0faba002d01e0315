import { fmtCount, fmtMs, fmtUntil } from '../format.js'
import type { KeyRow } from '../view-model.js'
import { circuitColor, healthColor } from './colors.js'
import { Table, type Column } from './Table.js'

export interface KeyTableProps {
  readonly keys: readonly KeyRow[]
  readonly width: number
  readonly maxRows: number
  readonly now: number
}

function healthText(k: KeyRow, now: number): string {
  if (k.state === 'disabled') return 'disabled'
  if (k.health === 'cooling') return `cooling ${fmtUntil(k.cooldownUntil, now)}`
  return k.health
}

/** Per upstream key: health, cooldown, circuit and the last minute's traffic. Never a secret. */
export function KeyTable({ keys, width, maxRows, now }: KeyTableProps) {
  const columns: Column<KeyRow>[] = [
    { title: 'KEY', width: 16, priority: 10, value: (k) => `${k.provider}/${k.label}` },
    { title: 'HEALTH', width: 13, priority: 9, value: (k) => healthText(k, now), color: (k) => healthColor(k.health, k.state === 'disabled') },
    { title: 'CIRCUIT', width: 9, priority: 8, value: (k) => (k.circuit.override ? `${k.circuit.state}!` : k.circuit.state).replace('_', '-'), color: (k) => circuitColor(k.circuit.state) },
    { title: 'REQ', width: 6, align: 'right', priority: 7, value: (k) => fmtCount(k.requests) },
    { title: 'ERR', width: 5, align: 'right', priority: 6, value: (k) => fmtCount(k.errors), color: (k) => (k.errors > 0 ? 'yellow' : undefined) },
    { title: 'AVG', width: 7, align: 'right', priority: 5, value: (k) => fmtMs(k.latencyMsAvg) },
    { title: 'INFL', width: 4, align: 'right', priority: 4, value: (k) => String(k.inFlight) },
    { title: 'REASON', width: 8, priority: 3, grow: true, maxWidth: 40, value: (k) => k.reason ?? '' },
  ]
  return <Table columns={columns} rows={keys} rowKey={(k) => `${k.provider}/${k.id}`} width={width} maxRows={maxRows} empty="No upstream keys (keyless providers only)." />
}
