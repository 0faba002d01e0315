import { Box } from 'ink'
import type { ReactNode } from 'react'
import type { StatsReport } from '../../../server/admin/stats.js'
import { PANEL_TITLES, sortedKeys, sortedProviders, sortedRequests, type Panel, type Sorts } from '../view-model.js'
import { Figures } from './Figures.js'
import { Footer } from './Footer.js'
import { Header, type LiveStatus } from './Header.js'
import { KeyTable } from './KeyTable.js'
import { PanelTabs } from './PanelTabs.js'
import { PanelTitle } from './PanelTitle.js'
import { Problem } from './Problem.js'
import { ProviderTable } from './ProviderTable.js'
import { RequestTable } from './RequestTable.js'
import { Sparkline } from './Sparkline.js'

export interface DashboardProps {
  /** the last report received (kept while the server is unreachable), or null before the first */
  readonly stats: StatsReport | null
  /** why the last poll failed, if it did */
  readonly problem: { readonly message: string; readonly failures: number } | null
  readonly target: string
  readonly columns: number
  /** terminal rows; Infinity for a one-off frame (`--once`), which shows every panel in full */
  readonly rows: number
  readonly focused: Panel
  readonly sorts: Sorts
  readonly paused: boolean
  /** a live session: show the keys and "retrying" */
  readonly interactive: boolean
  readonly now: number
}

/** From this size on, the three panels are on screen together; below it, tab switches between them. */
export const FULL_LAYOUT = { columns: 100, rows: 34 }

/** The whole screen, drawn from one stats report: no fetching, no state. */
export function Dashboard(props: DashboardProps) {
  const { stats, problem, columns, rows, focused, sorts, paused, interactive } = props
  const width = Math.max(40, columns - 1)
  const status: LiveStatus = paused ? 'paused' : problem ? 'stale' : !stats ? 'connecting' : stats.draining ? 'draining' : 'live'
  const now = stats?.at ?? props.now
  const full = rows === Infinity || (columns >= FULL_LAYOUT.columns && rows >= FULL_LAYOUT.rows)

  // Lines: header, figures (2), sparklines (2), footer, and one spare so Ink never scrolls.
  const problemLines = problem ? 3 + Math.ceil(problem.message.length / Math.max(20, width - 4)) : 0
  const left = rows - 1 - (stats ? 4 : 0) - problemLines - (interactive ? 1 : 0) - 1
  const series = stats?.series

  let panels: ReactNode = null
  if (stats && full) {
    const providers = sortedProviders(stats, sorts.providers)
    const keys = sortedKeys(stats, sorts.keys)
    const requests = sortedRequests(stats, sorts.requests)
    // Each panel: a title line, a header line, its rows. Providers and keys take what they need (up to a
    // third of the space each); the recent requests get the rest.
    const budget = left - 6
    const third = Math.max(3, Math.floor(budget / 3))
    const pRows = rows === Infinity ? Math.max(1, providers.length) : Math.min(Math.max(1, providers.length), third)
    const kRows = rows === Infinity ? Math.max(1, keys.length) : Math.min(Math.max(1, keys.length), third)
    const rRows = rows === Infinity ? Math.min(20, Math.max(1, requests.length)) : Math.max(1, budget - pRows - kRows)
    panels = (
      <Box flexDirection="column">
        <PanelTitle title={PANEL_TITLES.providers} focused={interactive && focused === 'providers'} sort={sorts.providers} />
        <ProviderTable providers={providers} width={width} maxRows={pRows} now={now} />
        <PanelTitle title={PANEL_TITLES.keys} focused={interactive && focused === 'keys'} sort={sorts.keys} />
        <KeyTable keys={keys} width={width} maxRows={kRows} now={now} />
        <PanelTitle title={`Recent requests`} focused={interactive && focused === 'requests'} sort={sorts.requests} />
        <RequestTable requests={requests} width={width} maxRows={rRows} />
      </Box>
    )
  } else if (stats) {
    const maxRows = Math.max(1, left - 2)
    panels = (
      <Box flexDirection="column">
        <PanelTabs focused={focused} sort={sorts[focused]} />
        {focused === 'providers' ? <ProviderTable providers={sortedProviders(stats, sorts.providers)} width={width} maxRows={maxRows} now={now} /> : null}
        {focused === 'keys' ? <KeyTable keys={sortedKeys(stats, sorts.keys)} width={width} maxRows={maxRows} now={now} /> : null}
        {focused === 'requests' ? <RequestTable requests={sortedRequests(stats, sorts.requests)} width={width} maxRows={maxRows} /> : null}
      </Box>
    )
  }

  return (
    <Box flexDirection="column" width={columns}>
      <Header target={props.target} uptimeS={stats?.uptimeS ?? null} status={status} connections={stats?.connections} instance={stats?.instance} now={props.now} width={width} />
      {problem ? <Problem message={problem.message} failures={problem.failures} retrying={interactive} /> : null}
      {stats && series ? (
        <Box flexDirection="column">
          <Figures stats={stats} />
          <Sparkline label="req/s" values={series.requests} width={width} color="cyan" />
          <Sparkline label="err/s" values={series.errors} width={width} color="red" />
        </Box>
      ) : null}
      {panels}
      {interactive ? <Footer paused={paused} windowS={stats?.windowS ?? null} width={width} /> : null}
    </Box>
  )
}
