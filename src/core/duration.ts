const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Parses '90s', '15m', '12h', '30d', '2w' into milliseconds; returns null for anything else. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)\s*([smhdw])$/.exec(text.trim())
  if (!m) return null
  const n = Number(m[1])
  return n > 0 ? n * UNITS[m[2]!]! : null
}
