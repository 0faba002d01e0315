import { Box, Text } from 'ink'
import type { StatsReport } from '../../../server/admin/stats.js'
import { fmtCount, fmtMs, fmtPercent, fmtRate } from '../format.js'
import { errorRateColor } from './colors.js'

export interface FiguresProps {
  readonly stats: StatsReport
}

/** The headline numbers over the report's window (a minute), and the totals since the server started. */
export function Figures({ stats }: FiguresProps) {
  const w = stats.window
  const lat = w.latencyMs
  return (
    <Box flexDirection="column">
      <Text wrap="truncate">
        {'req/s '}
        <Text bold>{fmtRate(w.requestsPerS)}</Text>
        {'  errors '}
        <Text bold color={errorRateColor(w.errorRate)}>{fmtPercent(w.errorRate)}</Text>
        {` (${fmtRate(w.errorsPerS)}/s)  tok/s `}
        <Text bold>{fmtRate(w.tokensPerS)}</Text>
        {'  streams '}
        <Text bold>{String(stats.activeStreams)}</Text>
        {'  rate-limited '}
        <Text bold color={w.rateLimited > 0 ? 'yellow' : undefined}>{String(w.rateLimited)}</Text>
      </Text>
      <Text wrap="truncate">
        {'latency p50 '}
        <Text bold>{fmtMs(lat?.p50)}</Text>
        {'  p95 '}
        <Text bold>{fmtMs(lat?.p95)}</Text>
        {'  p99 '}
        <Text bold>{fmtMs(lat?.p99)}</Text>
        <Text dimColor>{`   total ${fmtCount(stats.totals.requests)} req, ${fmtCount(stats.totals.errors)} err, ${fmtCount(stats.totals.tokens)} tok`}</Text>
      </Text>
    </Box>
  )
}
