/**
 * Routes whose model name is a pattern: `claude-sonnet-4-5*` catches `claude-sonnet-4-5-20250929`, the
 * dated names agents send. `*` matches any run of characters; an exact route always wins, and among
 * patterns the one with the most literal characters does. A target whose upstream model holds a `*`
 * gets the text the pattern's first `*` matched (`--target anthropic/*` passes the name through).
 */
import type { ConfigSnapshot, RouteConfig } from './snapshot.js'

export type { RoutePattern } from '../core/config.js'
import type { RoutePattern } from '../core/config.js'

export const isPattern = (model: string): boolean => model.includes('*')

/** The pattern routes of a snapshot's routes, most specific first. */
export function compilePatterns(routes: Iterable<RouteConfig>): RoutePattern[] {
  const out: RoutePattern[] = []
  for (const route of routes) {
    if (!isPattern(route.model)) continue
    const source = route.model.split('*').map(escapeRegex).join('(.*?)')
    out.push({ route, regex: new RegExp(`^${source}$`, 's') })
  }
  const literal = (p: RoutePattern) => p.route.model.replaceAll('*', '').length
  return out.sort((a, b) => literal(b) - literal(a) || a.route.model.localeCompare(b.route.model))
}

// Concrete routes for names matched by a pattern, per snapshot: the hot path builds one once per name.
// Bounded, since clients choose the names.
const CACHE_LIMIT = 1000
const concrete = new WeakMap<ConfigSnapshot, Map<string, RouteConfig | null>>()

/** The route that serves a model name: the exact route, else the most specific pattern's (with `*` targets filled in). */
export function findRoute(snapshot: ConfigSnapshot, model: string): RouteConfig | undefined {
  const exact = snapshot.routes.get(model)
  if (exact) return exact
  const patterns = snapshot.patterns
  if (!patterns || patterns.length === 0) return undefined
  let cache = concrete.get(snapshot)
  const hit = cache?.get(model)
  if (hit !== undefined) return hit ?? undefined
  let found: RouteConfig | null = null
  for (const p of patterns) {
    const m = p.regex.exec(model)
    if (!m) continue
    const matched = m[1] ?? ''
    found = {
      ...p.route,
      targets: p.route.targets.map((t) => (t.upstreamModel.includes('*') ? { ...t, upstreamModel: t.upstreamModel.replaceAll('*', matched) } : t)),
    }
    break
  }
  if (!cache) concrete.set(snapshot, (cache = new Map()))
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(model, found)
  return found ?? undefined
}

function escapeRegex(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
}
