import { Box, Text } from 'ink'

export interface ProblemProps {
  readonly message: string
  /** how many polls in a row failed */
  readonly failures: number
  readonly retrying: boolean
}

/** Why there are no live figures (server unreachable, credential refused), and that we keep trying. */
export function Problem({ message, failures, retrying }: ProblemProps) {
  return (
    <Box flexDirection="column" borderStyle="round" borderColor="red" paddingX={1}>
      <Text color="red" wrap="wrap">
        {message}
      </Text>
      {retrying ? <Text dimColor>{`Retrying every second${failures > 1 ? ` (${failures} attempts so far)` : ''}; q quits.`}</Text> : null}
    </Box>
  )
}
