/**
 * Window specs as operators write them: '100/10s', '2000000/1h', '60/m'. Windows run from one second
 * to one day. Pure functions with no imports, shared by the policy schema, the store, the CLI and the
 * limiter (so it lives in core: src/store and src/core must not reach into src/limits).
 */

export type LimitKind = 'requests' | 'tokens'

/** One sliding window: at most `limit` requests (or tokens) in any `windowMs` span. */
export interface WindowLimit {
  kind: LimitKind
  limit: number
  windowMs: number
}

export const MIN_WINDOW_MS = 1_000
export const MAX_WINDOW_MS = 86_400_000

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Parses 'N/WINDOW' (N may end in k or M: 100k, 2M; window: 10s, 1m, 1h, 1d, or a bare unit: s, m, h, d);
 * returns null when malformed.
 */
export function parseRate(text: string): { limit: number; windowMs: number } | null {
  const m = /^\s*(\d+(?:\.\d+)?)([kKmM]?)\s*\/\s*(\d*)\s*([smhd])\s*$/.exec(text)
  if (!m) return null
  const [, count, suffix, span, unit] = m as unknown as [string, string, string, string, string]
  const limit = Number(count) * (suffix === '' ? 1 : suffix.toLowerCase() === 'k' ? 1e3 : 1e6)
  const windowMs = (span ? Number(span) : 1) * UNIT_MS[unit]!
  if (!Number.isSafeInteger(limit) || limit < 1) return null
  if (windowMs < MIN_WINDOW_MS || windowMs > MAX_WINDOW_MS) return null
  return { limit, windowMs }
}

export const RATE_SYNTAX = "N/WINDOW with a window from 1s to 1d, e.g. '100/10s', '2M/1h', '60/1m'"

/** '10s', '1m', '90s', '1h', '1d': the shortest exact form. */
export function formatWindow(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    if (ms % UNIT_MS[unit]! === 0) return `${ms / UNIT_MS[unit]!}${unit}`
  }
  return `${Math.round(ms / 1000)}s`
}

export const formatRate = (w: { limit: number; windowMs: number }): string => `${w.limit}/${formatWindow(w.windowMs)}`

/** The rate part of a policy's `limits.global` / `limits.ip` / `limits.model[m]`, or of a client. */
export interface RateSpec {
  rpm?: number | null
  tpm?: number | null
  requests?: string | string[] | null
  tokens?: string | string[] | null
}

/** Turns a rate spec into windows; duplicate (kind, window) pairs keep the lowest limit. */
export function compileRateSpec(spec: RateSpec | null | undefined): WindowLimit[] {
  if (!spec) return []
  const out: WindowLimit[] = []
  if (spec.rpm) out.push({ kind: 'requests', limit: spec.rpm, windowMs: 60_000 })
  if (spec.tpm) out.push({ kind: 'tokens', limit: spec.tpm, windowMs: 60_000 })
  for (const kind of ['requests', 'tokens'] as const) {
    const list = spec[kind]
    for (const text of typeof list === 'string' ? [list] : (list ?? [])) {
      const rate = parseRate(text)
      if (rate) out.push({ kind, ...rate })
    }
  }
  return dedupeWindows(out)
}

export function dedupeWindows(windows: Iterable<WindowLimit>): WindowLimit[] {
  const byKey = new Map<string, WindowLimit>()
  for (const w of windows) {
    const key = `${w.kind}:${w.windowMs}`
    const prev = byKey.get(key)
    if (!prev || w.limit < prev.limit) byKey.set(key, w)
  }
  return [...byKey.values()]
}

/** Parses the CLI's `--limit requests=100/10s` (also `tokens=…`). */
export function parseLimitFlag(text: string): WindowLimit | null {
  const m = /^\s*(requests|tokens|req|tok)\s*=\s*(.+)$/.exec(text)
  if (!m) return null
  const rate = parseRate(m[2]!)
  if (!rate) return null
  const kind: LimitKind = m[1]!.startsWith('req') ? 'requests' : 'tokens'
  return { kind, ...rate }
}

/** '12.3k', '100k', '1.2M': compact counts for listings. */
export function formatCount(n: number): string {
  const abs = Math.abs(n)
  const fmt = (v: number, unit: string) => `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))}${unit}`
  if (abs >= 1e9) return fmt(n / 1e9, 'G')
  if (abs >= 1e6) return fmt(n / 1e6, 'M')
  if (abs >= 1e3) return fmt(n / 1e3, 'k')
  return String(n)
}

/** A client's window as stored in its `limits` column (migration 0004). */
export interface StoredWindow {
  kind: LimitKind
  limit: number
  window_s: number
}

/** A client's limits as one list: the rpm/tpm columns and the `limits` JSON column together. */
export function clientWindows(rpm: number | null, tpm: number | null, json: string | null): WindowLimit[] {
  const out: WindowLimit[] = []
  if (rpm) out.push({ kind: 'requests', limit: rpm, windowMs: 60_000 })
  if (tpm) out.push({ kind: 'tokens', limit: tpm, windowMs: 60_000 })
  if (json) {
    let stored: unknown
    try {
      stored = JSON.parse(json)
    } catch {
      stored = []
    }
    for (const w of Array.isArray(stored) ? (stored as StoredWindow[]) : []) {
      const windowMs = w.window_s * 1000
      const valid = (w.kind === 'requests' || w.kind === 'tokens') && Number.isSafeInteger(w.limit) && w.limit > 0 && windowMs >= MIN_WINDOW_MS && windowMs <= MAX_WINDOW_MS
      if (valid) out.push({ kind: w.kind, limit: w.limit, windowMs })
    }
  }
  return out
}
