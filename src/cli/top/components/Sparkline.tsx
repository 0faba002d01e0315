import { Text } from 'ink'
import { fmtRate, sparkline } from '../format.js'

export interface SparklineProps {
  readonly label: string
  readonly values: readonly number[]
  readonly width: number
  readonly color?: string
}

/** A label, one bar per second (oldest left), and the peak the bars are scaled to. */
export function Sparkline({ label, values, width, color }: SparklineProps) {
  const peak = Math.max(0, ...values)
  const suffix = ` peak ${fmtRate(peak)}`
  const bars = Math.max(0, width - label.length - 1 - suffix.length)
  return (
    <Text wrap="truncate">
      {`${label} `}
      <Text color={color}>{sparkline(values, bars).padEnd(Math.min(bars, values.length))}</Text>
      <Text dimColor>{suffix}</Text>
    </Text>
  )
}
