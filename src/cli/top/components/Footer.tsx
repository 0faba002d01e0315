import { Text } from 'ink'

export interface FooterProps {
  readonly paused: boolean
  /** seconds the rates and percentiles cover */
  readonly windowS: number | null
  readonly width: number
}

/** The keys, and what the figures cover. */
export function Footer({ paused, windowS, width }: FooterProps) {
  const keys = `q quit  tab panel  p ${paused ? 'resume' : 'pause'}  s sort`
  const note = windowS ? `rates and latency: last ${windowS}s` : ''
  return (
    <Text dimColor wrap="truncate">
      {keys + (note ? ' '.repeat(Math.max(2, width - keys.length - note.length)) + note : '')}
    </Text>
  )
}
