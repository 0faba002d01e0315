import { useApp, useInput, useStdin } from 'ink'
import { useReducer } from 'react'
import { Dashboard } from './components/Dashboard.js'
import { useLiveStats, type StatsSource } from './hooks/use-live-stats.js'
import { useTerminalSize } from './hooks/use-terminal-size.js'
import { INITIAL_UI, PANELS, uiReducer } from './view-model.js'

export interface TopAppProps {
  readonly source: StatsSource
  /** what is watched, for the header: a URL, or where a local server was looked for */
  readonly target: () => string
  readonly intervalMs?: number
}

/** `proxy top`: polls the stats, follows the keys, and hands everything to the Dashboard to draw. */
export function TopApp({ source, target, intervalMs = 1000 }: TopAppProps) {
  const { exit } = useApp()
  const { isRawModeSupported } = useStdin()
  const [ui, dispatch] = useReducer(uiReducer, INITIAL_UI)
  const live = useLiveStats(source, intervalMs, ui.paused)
  const size = useTerminalSize()

  useInput(
    (input, key) => {
      if (input === 'q' || key.escape) exit()
      else if (key.tab) dispatch({ type: 'next-panel', back: key.shift })
      else if (input === 'p') dispatch({ type: 'pause' })
      else if (input === 's') dispatch({ type: 'sort' })
      else if (input === '1' || input === '2' || input === '3') dispatch({ type: 'focus', panel: PANELS[Number(input) - 1]! })
    },
    { isActive: isRawModeSupported === true },
  )

  return (
    <Dashboard
      stats={live.stats}
      problem={live.error ? { message: live.error.message, failures: live.failures } : null}
      target={target()}
      columns={size.columns}
      rows={size.rows}
      focused={ui.focused}
      sorts={ui.sorts}
      paused={ui.paused}
      interactive
      now={Date.now()}
    />
  )
}
