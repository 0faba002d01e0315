import { Box, Text } from 'ink'
import type { InstanceFigures } from '../../../server/admin/stats.js'
import type { ConnectionFigures } from '../../../server/connections.js'
import { fmtClock, fmtConnections, fmtUptime } from '../format.js'

export type LiveStatus = 'live' | 'paused' | 'stale' | 'connecting' | 'draining'

export interface HeaderProps {
  readonly target: string
  readonly uptimeS: number | null
  readonly status: LiveStatus
  /** client connections against the cap; absent before the first report or from an older server */
  readonly connections?: ConnectionFigures
  /** which instance answers (hostname:port) and whether its store does; absent from an older server */
  readonly instance?: InstanceFigures
  readonly now: number
  readonly width: number
}

const STATUS: Record<LiveStatus, { text: string; color: string }> = {
  live: { text: '● live', color: 'green' },
  paused: { text: '‖ paused', color: 'yellow' },
  stale: { text: '○ unreachable', color: 'red' },
  connecting: { text: '○ connecting', color: 'gray' },
  draining: { text: '● draining', color: 'yellow' },
}

/** One line: what we watch, for how long it has run, its connections, whether the figures are live, and the time. */
export function Header({ target, uptimeS, status, connections, instance, now, width }: HeaderProps) {
  const left = `proxy top  ${target}${instance ? ` (${instance.id})` : ''}${uptimeS === null ? '' : `  up ${fmtUptime(uptimeS)}`}${connections ? `  ${fmtConnections(connections)}` : ''}`
  const s = STATUS[status]
  const clock = fmtClock(now)
  const store = instance && !instance.store.ok ? `store down  ` : ''
  const gap = Math.max(1, width - left.length - store.length - s.text.length - clock.length - 2)
  return (
    <Box>
      <Text wrap="truncate">
        <Text bold>{left}</Text>
        {' '.repeat(gap)}
        <Text color="red">{store}</Text>
        <Text color={s.color}>{s.text}</Text>
        {'  '}
        <Text dimColor>{clock}</Text>
      </Text>
    </Box>
  )
}
