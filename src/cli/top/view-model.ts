/**
 * What the dashboard shows and in which order: panels, their sort keys, and the rows of each panel
 * derived from one stats report. Pure functions, so the components only draw.
 */
import type { KeyStats, ProviderStats, StatsReport } from '../../server/admin/stats.js'
import type { RecentRequest } from '../../telemetry/live-stats.js'

export const PANELS = ['providers', 'keys', 'requests'] as const
export type Panel = (typeof PANELS)[number]

export const PANEL_TITLES: Record<Panel, string> = { providers: 'Providers', keys: 'Keys', requests: 'Requests' }

export const SORTS = {
  providers: ['requests', 'errors', 'latency', 'name'],
  keys: ['health', 'requests', 'errors', 'name'],
  requests: ['time', 'ms', 'status'],
} as const satisfies Record<Panel, readonly string[]>

export type SortKey<P extends Panel = Panel> = (typeof SORTS)[P][number]
export type Sorts = { [P in Panel]: SortKey<P> }

export const DEFAULT_SORTS: Sorts = { providers: 'requests', keys: 'health', requests: 'time' }

export function nextPanel(panel: Panel, back = false): Panel {
  const i = PANELS.indexOf(panel)
  return PANELS[(i + (back ? PANELS.length - 1 : 1)) % PANELS.length]!
}

export function nextSort<P extends Panel>(panel: P, current: SortKey<P>): SortKey<P> {
  const keys = SORTS[panel] as readonly SortKey<P>[]
  return keys[(keys.indexOf(current) + 1) % keys.length]!
}

/** What the keys change: which panel has focus, how each panel is sorted, whether polling is paused. */
export interface UiState {
  focused: Panel
  sorts: Sorts
  paused: boolean
}

export type UiAction = { type: 'next-panel'; back?: boolean } | { type: 'focus'; panel: Panel } | { type: 'sort' } | { type: 'pause' }

export const INITIAL_UI: UiState = { focused: 'providers', sorts: DEFAULT_SORTS, paused: false }

/** A reducer, so a key always acts on the current state (never on a render's stale closure). */
export function uiReducer(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'next-panel':
      return { ...state, focused: nextPanel(state.focused, action.back) }
    case 'focus':
      return { ...state, focused: action.panel }
    case 'sort':
      return { ...state, sorts: { ...state.sorts, [state.focused]: nextSort(state.focused, state.sorts[state.focused]) } }
    case 'pause':
      return { ...state, paused: !state.paused }
  }
}

export interface KeyRow extends KeyStats {
  provider: string
}

export function sortedProviders(stats: StatsReport, sort: SortKey<'providers'>): ProviderStats[] {
  const rows = [...stats.providers]
  const by: Record<SortKey<'providers'>, (a: ProviderStats, b: ProviderStats) => number> = {
    requests: (a, b) => b.requests - a.requests,
    errors: (a, b) => b.errors - a.errors,
    latency: (a, b) => (b.latencyMs?.p95 ?? -1) - (a.latencyMs?.p95 ?? -1),
    name: () => 0,
  }
  return rows.sort((a, b) => by[sort](a, b) || a.name.localeCompare(b.name))
}

const HEALTH_RANK = { invalid: 0, cooling: 1, ok: 2 } as const

export function sortedKeys(stats: StatsReport, sort: SortKey<'keys'>): KeyRow[] {
  const rows: KeyRow[] = stats.providers.flatMap((p) => p.keys.map((k) => ({ ...k, provider: p.name })))
  const trouble = (k: KeyRow) => (k.circuit.state === 'open' ? 0 : k.circuit.state === 'half_open' ? 1 : 2) + HEALTH_RANK[k.health] * 3 + (k.state === 'disabled' ? 9 : 0)
  const by: Record<SortKey<'keys'>, (a: KeyRow, b: KeyRow) => number> = {
    health: (a, b) => trouble(a) - trouble(b),
    requests: (a, b) => b.requests - a.requests,
    errors: (a, b) => b.errors - a.errors,
    name: () => 0,
  }
  return rows.sort((a, b) => by[sort](a, b) || a.provider.localeCompare(b.provider) || a.label.localeCompare(b.label))
}

export function sortedRequests(stats: StatsReport, sort: SortKey<'requests'>): RecentRequest[] {
  const rows = [...stats.recent]
  if (sort === 'ms') return rows.sort((a, b) => b.ms - a.ms)
  if (sort === 'status') return rows.sort((a, b) => b.status - a.status || b.at - a.at)
  return rows.sort((a, b) => b.at - a.at)
}
