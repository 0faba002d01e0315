import { Box, Text } from 'ink'
import { cell } from '../format.js'

export interface Column<R> {
  readonly title: string
  readonly width: number
  readonly align?: 'left' | 'right'
  /** columns with the lowest priority are left out first when the table is too wide */
  readonly priority: number
  /** takes the width left over (one column per table), up to `maxWidth` */
  readonly grow?: boolean
  readonly maxWidth?: number
  readonly value: (row: R) => string
  readonly color?: (row: R) => string | undefined
}

export interface TableProps<R> {
  readonly columns: readonly Column<R>[]
  readonly rows: readonly R[]
  readonly rowKey: (row: R, index: number) => string
  readonly width: number
  /** lines for the rows (the header is extra); a last '… N more' line counts as one */
  readonly maxRows: number
  readonly empty: string
}

/** Which columns fit in `width` (one space between them), and how wide each is drawn. */
export function fitColumns<R>(columns: readonly Column<R>[], width: number): Array<{ column: Column<R>; width: number }> {
  const kept = new Set<Column<R>>()
  let used = 0
  for (const c of [...columns].sort((a, b) => b.priority - a.priority)) {
    const need = c.width + (kept.size > 0 ? 1 : 0)
    if (used + need > width) continue
    kept.add(c)
    used += need
  }
  const spare = Math.max(0, width - used)
  return columns.filter((c) => kept.has(c)).map((c) => ({ column: c, width: c.grow ? Math.min(c.width + spare, c.maxWidth ?? Infinity) : c.width }))
}

/** A table as lines of text: a bold header, one line per row, cells cut to their column. */
export function Table<R>({ columns, rows, rowKey, width, maxRows, empty }: TableProps<R>) {
  const fitted = fitColumns(columns, width)
  const overflow = rows.length > maxRows
  const shown = overflow ? rows.slice(0, Math.max(0, maxRows - 1)) : rows
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate">
        {fitted.map(({ column, width: w }, i) => (i > 0 ? ' ' : '') + cell(column.title, w, column.align)).join('')}
      </Text>
      {rows.length === 0 ? <Text dimColor>{empty}</Text> : null}
      {shown.map((row, n) => (
        <Text key={rowKey(row, n)} wrap="truncate">
          {fitted.map(({ column, width: w }, i) => (
            <Text key={column.title} color={column.color?.(row)}>
              {(i > 0 ? ' ' : '') + cell(column.value(row), w, column.align)}
            </Text>
          ))}
        </Text>
      ))}
      {overflow ? <Text dimColor>{`… ${rows.length - shown.length} more`}</Text> : null}
    </Box>
  )
}
