import { Text } from 'ink'

export interface PanelTitleProps {
  readonly title: string
  readonly focused: boolean
  readonly sort: string
}

/** The title of a panel when several are on screen; the focused one is highlighted. */
export function PanelTitle({ title, focused, sort }: PanelTitleProps) {
  return (
    <Text wrap="truncate">
      <Text inverse={focused} bold>{` ${title} `}</Text>
      <Text dimColor>{focused ? `  sorted by ${sort}` : ''}</Text>
    </Text>
  )
}
