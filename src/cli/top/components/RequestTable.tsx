import type { RecentRequest } from '../../../telemetry/live-stats.js'
import { fmtClock, fmtCount, fmtMs } from '../format.js'
import { statusColor } from './colors.js'
import { Table, type Column } from './Table.js'

export interface RequestTableProps {
  readonly requests: readonly RecentRequest[]
  readonly width: number
  readonly maxRows: number
}

/** The most recent requests: when, id, who, which model and provider, status, time, tokens. */
export function RequestTable({ requests, width, maxRows }: RequestTableProps) {
  const columns: Column<RecentRequest>[] = [
    { title: 'TIME', width: 8, priority: 8, value: (r) => fmtClock(r.at) },
    { title: 'REQUEST ID', width: 28, priority: 9, value: (r) => r.id },
    { title: 'CLIENT', width: 10, priority: 3, value: (r) => r.client ?? '-' },
    // an older server reports no team
    { title: 'TEAM', width: 8, priority: 2, value: (r) => r.team ?? '-' },
    { title: 'MODEL', width: 10, priority: 6, grow: true, maxWidth: 28, value: (r) => (r.stream ? `${r.model ?? '-'} ~` : (r.model ?? '-')) },
    { title: 'PROVIDER', width: 9, priority: 5, value: (r) => r.provider ?? '-' },
    { title: 'ST', width: 3, align: 'right', priority: 10, value: (r) => String(r.status), color: (r) => statusColor(r.status, r.error) },
    { title: 'MS', width: 7, align: 'right', priority: 7, value: (r) => fmtMs(r.ms) },
    { title: 'TOK', width: 5, align: 'right', priority: 4, value: (r) => (r.tokens === null ? '-' : fmtCount(r.tokens)) },
    { title: 'ERROR', width: 20, priority: 1, value: (r) => r.error ?? '', color: (r) => (r.error ? 'red' : undefined) },
  ]
  return <Table columns={columns} rows={requests} rowKey={(r, i) => `${r.id}:${i}`} width={width} maxRows={maxRows} empty="No requests yet." />
}
