import { modelNotAllowed, modelNotFound } from '../core/errors.js'
import type { ClientConfig, ConfigSnapshot, RouteConfig } from '../store/snapshot.js'

export const SETUP_HINT =
  "This proxy has no models yet: add a provider ('proxy providers add NAME --type openai'), a key ('proxy keys add NAME') and a model ('proxy models add MODEL --target NAME/UPSTREAM_MODEL'), or start it with 'proxy serve --demo'."

/** The route a client may use for a model name, or the 404/403 that explains why not. */
export function resolveRoute(snapshot: ConfigSnapshot, model: string, client: ClientConfig): RouteConfig {
  const route = snapshot.routes.get(model)
  if (!route || route.targets.length === 0) {
    throw modelNotFound(model, snapshot.routes.size === 0 ? SETUP_HINT : "List the models you can use with GET /v1/models.")
  }
  if (client.models && !client.models.has(model)) {
    throw modelNotAllowed(client.name, model)
  }
  return route
}

/** Models a client may call, in a stable order. */
export function visibleRoutes(snapshot: ConfigSnapshot, client: ClientConfig): RouteConfig[] {
  const out: RouteConfig[] = []
  for (const route of snapshot.routes.values()) {
    if (route.targets.length > 0 && (!client.models || client.models.has(route.model))) out.push(route)
  }
  return out.sort((a, b) => a.model.localeCompare(b.model))
}
