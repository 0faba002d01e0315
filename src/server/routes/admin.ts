/**
 * The admin API under /admin/v1: providers, keys, clients, routes, policies, circuit overrides, and
 * live stats. Admin client keys and this server's local token only (401 without a key, 403 for a user
 * key, in OpenAI's error shape). Bodies are validated at the edge; writes go through the same store
 * repositories as the CLI and are applied at once (the server's own writes do not bump SQLite's
 * data_version, so the poller would not see them). Not the LLM hot path: SQLite writes are fine here.
 *
 * Successful calls are not request-logged or audited (`proxy top` polls every second); writes log one
 * `event: "admin"` line naming the action and who did it. Failures go through the app's error hook.
 */
import type { H3, H3Event } from 'h3'
import type * as z from '../../core/zod.js'
import { invalidRequest, methodNotAllowed, pathNotFound, ProxyError } from '../../core/errors.js'
import { parseRequest } from '../../core/openai-schema.js'
import type { GatewayHealth } from '../../gateway/gateway.js'
import type { ConfigSource } from '../../store/config-source.js'
import type { Store } from '../../store/db.js'
import type { LiveStats } from '../../telemetry/live-stats.js'
import type { Logger } from '../../telemetry/logger.js'
import { authenticateAdmin } from '../admin/auth.js'
import { configEndpoints, type AdminCall, type AdminEndpoint } from '../admin/handlers.js'
import { auditEndpoints } from '../admin/audit.js'
import type { ObjectStore } from '../../store/object-store.js'
import { spendEndpoints } from '../admin/spend-handlers.js'
import type { LocalAccess } from '../admin/local-access.js'
import { buildStatsReport, type InstanceFigures } from '../admin/stats.js'
import { readJsonBody } from '../body.js'
import type { ConnectionFigures } from '../connections.js'
import { beginRequest } from '../request-context.js'
import { cacheEndpoints } from '../cache/admin.js'
import type { ResponseCache } from '../cache/response-cache.js'

export const ADMIN_PREFIX = '/admin/v1'

export interface AdminRouteDeps {
  store: Store
  /** where bodies over the inline cap were captured (--capture-store), read back by GET /audit/:id */
  captureStore?: ObjectStore | null
  /** reloaded after every write, so the change applies at once */
  config: ConfigSource
  gateway: { health(): GatewayHealth }
  liveStats: LiveStats
  logger: Logger
  /** the local token written to <dataDir>/admin.token, once the server listens */
  localAccess: () => LocalAccess | null
  draining: () => boolean
  /** open connections, the cap and refused connections, for the stats */
  connections?: () => ConnectionFigures
  /** which server this is, and its store's state, for the stats */
  instance?: () => InstanceFigures
  maxBodyBytes: number
  maxJsonDepth?: number
  /** the response cache, for GET/DELETE /admin/v1/cache */
  cache?: ResponseCache
}

export function registerAdminRoutes(app: H3, deps: AdminRouteDeps): void {
  const endpoints: AdminEndpoint[] = [...configEndpoints(deps.store), ...auditEndpoints(deps.store, deps.captureStore ?? null), ...spendEndpoints(deps.store), statsEndpoint(deps), ...(deps.cache ? cacheEndpoints(deps.cache) : [])]
  for (const e of endpoints) app.on(e.method, ADMIN_PREFIX + e.path, handle(deps, e))

  // Anything else under the prefix: 405 for a known path with another method, else 404; both only to an
  // admin, so that which paths exist cannot be probed without a key.
  const patterns = endpoints.map((e) => ({ method: e.method, re: pathPattern(ADMIN_PREFIX + e.path) }))
  const unknown = (event: H3Event) => {
    const state = beginRequest(event)
    state.record.client = authenticateAdmin(event.req.headers, deps.config.current(), deps.localAccess()).name
    const path = event.url.pathname
    const allowed = [...new Set(patterns.filter((p) => p.re.test(path)).map((p) => p.method))]
    if (allowed.length > 0) throw methodNotAllowed(event.req.method, path, allowed)
    throw pathNotFound(path, `The admin API serves providers, keys, clients, routes, policies, circuits, audit rows, stats and the cache under ${ADMIN_PREFIX}.`)
  }
  app.all(ADMIN_PREFIX, unknown)
  app.all(`${ADMIN_PREFIX}/**`, unknown)
}

function statsEndpoint(deps: AdminRouteDeps): AdminEndpoint {
  return {
    method: 'GET',
    path: '/stats',
    async run(call) {
      const raw = call.query.get('window')
      const windowS = raw === null ? 60 : Number(raw)
      if (!Number.isInteger(windowS) || windowS < 1 || windowS > 3600) throw invalidRequest(`window must be a whole number of seconds from 1 to 3600, not '${raw}'.`, 'window', 'invalid_value')
      return buildStatsReport(deps.liveStats.report(windowS), deps.gateway.health(), deps.draining(), deps.connections?.(), deps.instance?.())
    },
  }
}

function handle(deps: AdminRouteDeps, endpoint: AdminEndpoint) {
  return async (event: H3Event) => {
    const state = beginRequest(event)
    const principal = authenticateAdmin(event.req.headers, deps.config.current(), deps.localAccess())
    state.record.client = principal.name
    const call = adminCall(event, deps.maxBodyBytes, deps.maxJsonDepth)
    const result = await endpoint.run(call)
    if (endpoint.action) {
      await applyNow(deps.config, Date.now())
      deps.logger.info({ event: 'admin', action: endpoint.action, by: principal.name, via: principal.via, params: call.params, request_id: state.record.requestId }, 'admin change')
    }
    event.res.status = endpoint.status ?? 200
    event.res.headers.set('cache-control', 'no-store')
    return result
  }
}

function adminCall(event: H3Event, maxBodyBytes: number, maxJsonDepth: number | undefined): AdminCall {
  const params = Object.fromEntries(Object.entries(event.context.params ?? {}).map(([k, v]) => [k, String(v)]))
  const json = () => readJsonBody(event, maxBodyBytes, maxJsonDepth)
  return {
    params,
    query: event.url.searchParams,
    body: async <S extends z.ZodType>(schema: S) => parseBody(schema, await json()),
    async optionalBody<S extends z.ZodType>(schema: S) {
      const length = event.req.headers.get('content-length')
      const hasBody = (length !== null && length !== '0') || event.req.headers.has('transfer-encoding')
      return parseBody(schema, hasBody ? await json() : {})
    },
    rawBody: json,
  }
}

/** parseRequest, except that an unknown field is named in `param` itself (not its parent object). */
function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const result = schema.safeParse(body)
    const issue = result.success ? undefined : result.error.issues[0]
    if (issue?.code === 'unrecognized_keys') {
      const param = [...issue.path, issue.keys[0]!].map(String).join('.')
      throw invalidRequest(`Unknown parameter: '${param}'.`, param, 'unknown_parameter')
    }
  }
  return parseRequest(schema, body)
}

/**
 * Loads a snapshot that includes the write just made. A reload the poller started before the write
 * may still be in flight (reload() then hands back that one), so when the snapshot answered predates
 * the write, load once more.
 */
async function applyNow(config: ConfigSource, wroteAt: number): Promise<void> {
  try {
    const snapshot = await config.reload()
    if (snapshot.loadedAt <= wroteAt) await config.reload()
  } catch (err) {
    throw new ProxyError({
      status: 500,
      type: 'server_error',
      code: 'reload_failed',
      message: `The change was stored, but reloading the configuration failed (${err instanceof Error ? err.message : String(err)}); the server keeps serving the previous configuration until the next change.`,
      cause: err,
    })
  }
}

/** '/admin/v1/keys/:ref/rotate' -> a RegExp that matches concrete paths of that shape */
function pathPattern(path: string): RegExp {
  const source = path
    .split('/')
    .map((part) => (part.startsWith('**') ? '.+' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/')
  return new RegExp(`^${source}/?$`)
}
