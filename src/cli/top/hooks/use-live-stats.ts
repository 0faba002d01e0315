import { useLayoutEffect, useState } from 'react'
import type { StatsReport } from '../../../server/admin/stats.js'

/** Where the figures come from: the admin client in the CLI, anything that resolves a report in tests. */
export type StatsSource = () => Promise<StatsReport>

export interface LiveStatsState {
  /** the last report received; kept while later polls fail */
  stats: StatsReport | null
  /** why the last poll failed; null after a success */
  error: Error | null
  /** polls failed in a row */
  failures: number
}

/**
 * Polls `source` every `intervalMs` (the next poll is scheduled when the last one has answered, so a
 * slow server is never asked twice at once). Paused, it stops polling and keeps what it has.
 *
 * A layout effect, not a passive one: its cleanup runs inside the commit, before Ink writes the frame, so
 * once "paused" is on screen no timer is left that could still poll. A passive cleanup runs after the
 * frame, and a poll due in between slipped through.
 */
export function useLiveStats(source: StatsSource, intervalMs: number, paused = false): LiveStatsState {
  const [state, setState] = useState<LiveStatsState>({ stats: null, error: null, failures: 0 })
  useLayoutEffect(() => {
    if (paused) return
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    const poll = async () => {
      try {
        const stats = await source()
        if (!stopped) setState({ stats, error: null, failures: 0 })
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e))
        if (!stopped) setState((s) => ({ stats: s.stats, error, failures: s.failures + 1 }))
      }
      if (!stopped) timer = setTimeout(() => void poll(), intervalMs)
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [source, intervalMs, paused])
  return state
}
