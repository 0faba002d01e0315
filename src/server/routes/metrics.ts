/**
 * GET /metrics: the Prometheus text exposition of the registry the composition root built. Open by
 * default on a loopback address; with `requireAdmin` (PROXY_METRICS_AUTH=admin, or auto on a public
 * address) it takes an admin client key, like Prometheus' `authorization: { credentials_file }`.
 * Scrapes are not request-logged or audited (errors are, through the app's error hook).
 */
import type { H3 } from 'h3'
import type { Registry } from 'prom-client'
import type { ConfigSnapshot } from '../../core/config.js'
import { authenticate, requireAdmin } from '../auth.js'

export interface MetricsRouteDeps {
  registry: Registry
  config: () => ConfigSnapshot
  requireAdmin: boolean
}

export function registerMetricsRoute(app: H3, deps: MetricsRouteDeps): void {
  app.get('/metrics', async (event) => {
    if (deps.requireAdmin) requireAdmin(authenticate(event.req.headers, deps.config()))
    const body = await deps.registry.metrics()
    return new Response(body, { status: 200, headers: { 'content-type': deps.registry.contentType, 'cache-control': 'no-store' } })
  })
}
