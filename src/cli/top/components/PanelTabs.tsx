import { Text } from 'ink'
import { PANEL_TITLES, PANELS, type Panel } from '../view-model.js'

export interface PanelTabsProps {
  readonly focused: Panel
  readonly sort: string
}

/** Which panel tab and s act on, and how it is sorted. */
export function PanelTabs({ focused, sort }: PanelTabsProps) {
  return (
    <Text wrap="truncate">
      {PANELS.map((p) => (
        <Text key={p} inverse={p === focused} bold={p === focused}>
          {` ${PANEL_TITLES[p]} `}
        </Text>
      ))}
      <Text dimColor>{`   sorted by ${sort}`}</Text>
    </Text>
  )
}
