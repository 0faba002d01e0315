import { modelNotAllowed, modelNotFound } from '../core/errors.js'
import { findRoute, isPattern } from '../store/route-patterns.js'
import type { ClientConfig, ConfigSnapshot, RouteConfig } from '../core/config.js'

export const SETUP_HINT =
  "This proxy has no models yet: add a provider ('proxy providers add NAME --type openai'), a key ('proxy keys add NAME') and a model ('proxy models add MODEL --target NAME/UPSTREAM_MODEL'), or start it with 'proxy serve --demo'."

/** The route a client may use for a model name (exact, else a pattern), or the 404/403 that explains why not. */
export function resolveRoute(snapshot: ConfigSnapshot, model: string, client: ClientConfig): RouteConfig {
  const route = findRoute(snapshot, model)
  if (!route || route.targets.length === 0) {
    throw modelNotFound(model, snapshot.routes.size === 0 ? SETUP_HINT : "List the models you can use with GET /v1/models.")
  }
  // a client allowed a pattern may use every name it matches
  if (client.models && !client.models.has(model) && !client.models.has(route.model)) {
    throw modelNotAllowed(client.name, model)
  }
  return route
}

/** Models a client may call, in a stable order; a pattern is no model id, so it is not listed. */
export function visibleRoutes(snapshot: ConfigSnapshot, client: ClientConfig): RouteConfig[] {
  const out: RouteConfig[] = []
  for (const route of snapshot.routes.values()) {
    if (route.targets.length > 0 && !isPattern(route.model) && (!client.models || client.models.has(route.model))) out.push(route)
  }
  return out.sort((a, b) => a.model.localeCompare(b.model))
}
