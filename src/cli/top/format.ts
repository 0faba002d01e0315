/** Small pure helpers for drawing figures in a terminal: short numbers, durations, sparklines, cells. */

export function fmtCount(n: number): string {
  if (n < 1000) return String(Math.round(n))
  if (n < 1e6) return `${trim(n / 1e3)}k`
  if (n < 1e9) return `${trim(n / 1e6)}M`
  return `${trim(n / 1e9)}G`
}

/** a rate per second: two decimals when small, short form when large */
export function fmtRate(n: number): string {
  if (n === 0) return '0'
  if (n < 10) return n.toFixed(2)
  if (n < 1000) return n.toFixed(1)
  return fmtCount(n)
}

export function fmtPercent(fraction: number): string {
  if (fraction === 0) return '0%'
  const p = fraction * 100
  return p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`
}

/** milliseconds as ms below a second, else seconds or minutes */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-'
  if (ms < 10) return `${ms.toFixed(1)}ms`
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`
  return `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`
}

export function fmtUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (d > 0) return `${d}d${h}h`
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`
  return `${s}s`
}

/** 'conns 12/4,000', and how many were refused at the cap when any were */
export function fmtConnections(c: { open: number; max: number; refused: number }): string {
  const n = (v: number) => v.toLocaleString('en-US')
  return `conns ${n(c.open)}/${n(c.max)}${c.refused > 0 ? ` (${n(c.refused)} refused)` : ''}`
}

/** HH:MM:SS in local time */
export function fmtClock(epochMs: number): string {
  const d = new Date(epochMs)
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

/** time left until an epoch ms, for cooldowns and open circuits */
export function fmtUntil(epochMs: number | null, now: number): string {
  if (epochMs === null) return '-'
  const left = Math.max(0, epochMs - now)
  return left < 1000 ? '<1s' : fmtMs(Math.ceil(left / 1000) * 1000)
}

const BARS = '▁▂▃▄▅▆▇█'

/** the last `width` values as bars scaled to their maximum; a zero is a space, anything else at least ▁ */
export function sparkline(values: readonly number[], width: number): string {
  const shown = values.slice(Math.max(0, values.length - width))
  const max = Math.max(0, ...shown)
  let out = ''
  for (const v of shown) out += v <= 0 || max === 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.max(0, Math.ceil((v / max) * BARS.length) - 1))]
  return out.padStart(Math.min(width, values.length), ' ')
}

/** fits text into exactly `width` columns: cut with '…', padded left or right */
export function cell(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return ''
  const fitted = text.length > width ? (width === 1 ? '…' : text.slice(0, width - 1) + '…') : text
  return align === 'right' ? fitted.padStart(width) : fitted.padEnd(width)
}

function trim(n: number): string {
  return n < 10 ? n.toFixed(1).replace(/\.0$/, '') : String(Math.round(n))
}
