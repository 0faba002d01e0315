import type { ProviderStats } from '../../../server/admin/stats.js'
import { fmtCount, fmtMs, fmtPercent, fmtUntil } from '../format.js'
import { circuitColor, errorRateColor } from './colors.js'
import { Table, type Column } from './Table.js'

export interface ProviderTableProps {
  readonly providers: readonly ProviderStats[]
  readonly width: number
  readonly maxRows: number
  /** the report's time, for "open for 12s" */
  readonly now: number
}

const rate = (p: ProviderStats) => (p.requests ? p.errors / p.requests : 0)

function circuitText(p: ProviderStats, now: number): string {
  const forced = p.circuit.override ? ` (forced)` : ''
  return p.circuit.state === 'open' && p.circuit.openUntil ? `open ${fmtUntil(p.circuit.openUntil, now)}${forced}` : `${p.circuit.state.replace('_', '-')}${forced}`
}

/** Per provider over the last minute: upstream attempts, errors, latency, circuit, keys usable. */
export function ProviderTable({ providers, width, maxRows, now }: ProviderTableProps) {
  const columns: Column<ProviderStats>[] = [
    { title: 'PROVIDER', width: 12, priority: 10, grow: true, maxWidth: 24, value: (p) => (p.enabled ? p.name : `${p.name} (off)`) },
    { title: 'TYPE', width: 9, priority: 2, value: (p) => p.type },
    { title: 'REQ', width: 6, align: 'right', priority: 9, value: (p) => fmtCount(p.requests) },
    { title: 'ERR', width: 5, align: 'right', priority: 8, value: (p) => fmtCount(p.errors), color: (p) => errorRateColor(rate(p)) },
    { title: 'ERR%', width: 5, align: 'right', priority: 5, value: (p) => fmtPercent(rate(p)), color: (p) => errorRateColor(rate(p)) },
    { title: 'P50', width: 7, align: 'right', priority: 7, value: (p) => fmtMs(p.latencyMs?.p50) },
    { title: 'P95', width: 7, align: 'right', priority: 6, value: (p) => fmtMs(p.latencyMs?.p95) },
    { title: 'CIRCUIT', width: 12, priority: 8, value: (p) => circuitText(p, now), color: (p) => circuitColor(p.circuit.state) },
    { title: 'INFL', width: 4, align: 'right', priority: 4, value: (p) => String(p.inFlight) },
    { title: 'KEYS', width: 5, align: 'right', priority: 3, value: (p) => (p.keys.length ? `${p.keys.filter((k) => k.available).length}/${p.keys.length}` : '-') },
  ]
  return <Table columns={columns} rows={providers} rowKey={(p) => p.name} width={width} maxRows={maxRows} empty="No providers configured." />
}
