import { Text } from 'ink'

export interface FooterProps {
  readonly paused: boolean
}

/** The keys. */
export function Footer({ paused }: FooterProps) {
  return (
    <Text dimColor wrap="truncate">
      {`q quit  tab panel  p ${paused ? 'resume' : 'pause'}  s sort`}
    </Text>
  )
}
