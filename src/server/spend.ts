/**
 * What a request may cost, for money budgets: its size (prompt tokens, and the output cap it sets) and
 * the highest prices among the providers that may serve it (the route's targets and the global fallback
 * route's), so that its reservation covers whichever serves. The provider actually tried reserves again
 * against its own budgets at its price (see Admission.reserveProvider).
 */
import type { ConfigSnapshot, RouteConfig } from '../core/config.js'
import { priceIn, type Price } from '../core/prices.js'
import type { CountFn } from '../limits/estimate.js'
import type { SpendInput } from '../limits/limiter.js'
import { findRoute } from '../store/route-patterns.js'

export interface SizedRequest<Req> {
  prompt?(req: Req, count: CountFn): number
  tokens(req: Req, count: CountFn): number
  /** the most output tokens the request allows (max_tokens and the like, times n); null when it sets none */
  maxOutput?(req: Req): number | null
}

const worst = new WeakMap<ConfigSnapshot, Map<RouteConfig, Price | null>>()

/** The highest input and output prices over the targets that may serve a route (null when none is priced). */
export function worstPrice(snapshot: ConfigSnapshot, route: RouteConfig): Price | null {
  let cache = worst.get(snapshot)
  if (!cache) worst.set(snapshot, (cache = new Map()))
  const known = cache.get(route)
  if (known !== undefined) return known
  const global = snapshot.routes.get(snapshot.globalPolicy.fallback.global_route ?? '')
  let price: Price | null = null
  for (const t of [...route.targets, ...(global && global !== route ? global.targets : [])]) {
    const p = priceIn(snapshot, t.provider.name, t.upstreamModel)?.price
    if (!p) continue
    price = price ? { input: Math.max(price.input, p.input, p.cacheWrite ?? 0), output: Math.max(price.output, p.output) } : { input: Math.max(p.input, p.cacheWrite ?? 0), output: p.output }
  }
  cache.set(route, price)
  return price
}

export function spendInput<Req>(snapshot: ConfigSnapshot, endpoint: SizedRequest<Req>, request: Req, model: string): SpendInput | undefined {
  const route = findRoute(snapshot, model)
  if (!route) return undefined
  return {
    price: worstPrice(snapshot, route),
    size: (count) => {
      const prompt = endpoint.prompt ? endpoint.prompt(request, count) : endpoint.tokens(request, count)
      return { prompt, maxOutput: endpoint.maxOutput ? endpoint.maxOutput(request) : endpoint.prompt ? null : 0 }
    },
  }
}
