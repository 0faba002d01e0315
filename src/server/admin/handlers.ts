/**
 * What each admin endpoint does, on the same store repositories the CLI uses. A handler gets a
 * validated body and returns JSON; the router (routes/admin.ts) authenticates, reloads the config
 * after a write and logs it. Nothing here returns a secret: upstream keys go in, never out, and a
 * client key is returned once, by the call that created it.
 */
import type * as z from '../../core/zod.js'
import { parseDuration } from '../../core/duration.js'
import { invalidRequest } from '../../core/errors.js'
import { editProvider } from '../../providers/provider-edit.js'
import type { Store } from '../../store/db.js'
import { setClientCapture } from '../../store/repos/audit.js'
import { listCircuits, setCircuitOverride, type CircuitAction } from '../../store/repos/circuits.js'
import { addClient, listClients, revokeClient, rotateClient } from '../../store/repos/clients.js'
import { resetKeyHealth } from '../../store/repos/key-health.js'
import { getPolicy, listPolicies, removePolicy, setPolicy } from '../../store/repos/policies.js'
import { addKey, listKeys, removeKey, rotateKey, setKeyState } from '../../store/repos/provider-keys.js'
import { addProvider, listProviders, removeProvider, updateProvider } from '../../store/repos/providers.js'
import { addRoute, listRoutes, parseTarget, removeRoute, type RouteTargetInput } from '../../store/repos/routes.js'
import { addClientBody, addKeyBody, addProviderBody, addRouteBody, circuitBody, keyRefBody, rotateKeyBody, setProviderBody } from './schemas.js'

export interface AdminCall {
  params: Record<string, string>
  query: URLSearchParams
  /** the JSON body, validated (400 naming the field when it does not fit) */
  body<S extends z.ZodType>(schema: S): Promise<z.infer<S>>
  /** the JSON body when there is one, else `{}`, validated */
  optionalBody<S extends z.ZodType>(schema: S): Promise<z.infer<S>>
  /** the raw JSON body (policy documents are validated by their own schema) */
  rawBody(): Promise<unknown>
}

export interface AdminEndpoint {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** under /admin/v1 */
  path: string
  /** writes name an action for the log line and trigger a config reload */
  action?: string
  /** the HTTP status of a success; 200 by default */
  status?: number
  run(call: AdminCall): Promise<unknown>
}

export const list = <T>(data: T[]) => ({ object: 'list' as const, data })

export function configEndpoints(store: Store): AdminEndpoint[] {
  const { db } = store
  return [
    // providers
    { method: 'GET', path: '/providers', run: async () => list(await listProviders(db)) },
    {
      method: 'POST',
      path: '/providers',
      action: 'providers.add',
      status: 201,
      async run(call) {
        const body = await call.body(addProviderBody)
        const endpoint = editProvider(body.type, { baseUrl: null, settings: {} }, body)
        return addProvider(db, { name: body.name, type: body.type, ...endpoint })
      },
    },
    {
      method: 'PATCH',
      path: '/providers/:name',
      action: 'providers.set',
      async run(call) {
        // As `proxy providers set`: settings merge into the current ones; keys and routes stay.
        const { unsetSettings, ...body } = await call.body(setProviderBody)
        if (Object.keys(body).length === 0 && !unsetSettings) throw invalidRequest('Nothing to change: send baseUrl, settings, unsetSettings or preset.')
        const edit = { ...body, unset: unsetSettings }
        return updateProvider(db, call.params.name!, (current) => editProvider(current.type, current, edit))
      },
    },
    {
      method: 'DELETE',
      path: '/providers/:name',
      action: 'providers.remove',
      async run(call) {
        await removeProvider(db, call.params.name!)
        return { object: 'provider', name: call.params.name, deleted: true }
      },
    },

    // provider keys
    {
      method: 'GET',
      path: '/keys',
      run: async (call) => list(await listKeys(db, { provider: call.query.get('provider') ?? undefined, includeRetired: flag(call.query.get('all')) })),
    },
    {
      method: 'POST',
      path: '/keys',
      action: 'keys.add',
      status: 201,
      async run(call) {
        const body = await call.body(addKeyBody)
        return addKey(store, body)
      },
    },
    {
      method: 'POST',
      path: '/keys/:ref/rotate',
      action: 'keys.rotate',
      async run(call) {
        const body = await call.body(rotateKeyBody)
        return rotateKey(store, call.params.ref!, body.secret, body.provider ?? call.query.get('provider') ?? undefined)
      },
    },
    {
      method: 'POST',
      path: '/keys/:ref/disable',
      action: 'keys.disable',
      async run(call) {
        return setKeyState(db, call.params.ref!, 'disabled', await keyProvider(call))
      },
    },
    {
      method: 'POST',
      path: '/keys/:ref/enable',
      action: 'keys.enable',
      async run(call) {
        // As `proxy keys enable`: back in use, and its recorded health (invalid, cooldown, circuit) cleared.
        const key = await setKeyState(db, call.params.ref!, 'active', await keyProvider(call))
        await resetKeyHealth(db, key.id)
        return { ...key, health: 'ok' as const, healthReason: null, cooldownUntil: null }
      },
    },
    {
      method: 'DELETE',
      path: '/keys/:ref',
      action: 'keys.remove',
      async run(call) {
        const key = await removeKey(db, call.params.ref!, await keyProvider(call))
        return { ...key, deleted: true }
      },
    },

    // clients
    { method: 'GET', path: '/clients', run: async () => list(await listClients(db)) },
    {
      method: 'POST',
      path: '/clients',
      action: 'clients.add',
      status: 201,
      async run(call) {
        const body = await call.body(addClientBody)
        const expiresAt = body.expires ? parseExpiry(body.expires) : null
        const warnings: string[] = []
        const added = await db.transaction().execute(async (tx) => {
          const result = await addClient(tx, {
            name: body.name,
            role: body.role,
            models: body.models ?? null,
            expiresAt,
            policy: body.policy ?? null,
            rpm: body.rpm ?? null,
            tpm: body.tpm ?? null,
            dailyTokens: body.dailyTokens ?? null,
            monthlyTokens: body.monthlyTokens ?? null,
          })
          if (body.policy && !(await tx.selectFrom('policies').select('id').where('name', '=', body.policy).executeTakeFirst())) {
            warnings.push(`Policy '${body.policy}' does not exist yet; until it is stored, the route's and the global policy apply.`)
          }
          if (body.capture) await setClientCapture(tx, body.name, true)
          return result
        })
        // The key is in this answer only: it is stored as a hash.
        return { ...added.client, key: added.key, ...(warnings.length ? { warnings } : {}) }
      },
    },
    {
      method: 'POST',
      path: '/clients/:name/revoke',
      action: 'clients.revoke',
      run: (call) => revokeClient(db, call.params.name!),
    },
    {
      method: 'POST',
      path: '/clients/:name/rotate',
      action: 'clients.rotate',
      async run(call) {
        const { client, key } = await rotateClient(db, call.params.name!)
        return { ...client, key }
      },
    },

    // routes (model names)
    { method: 'GET', path: '/routes', run: async () => list(await listRoutes(db)) },
    {
      method: 'POST',
      path: '/routes',
      action: 'routes.add',
      status: 201,
      async run(call) {
        const body = await call.body(addRouteBody)
        const targets: RouteTargetInput[] = body.targets.map((t, i) => {
          if (typeof t !== 'string') return t
          try {
            return parseTarget(t)
          } catch (e) {
            throw invalidRequest(e instanceof Error ? e.message.replace('--target', 'a target') : String(e), `targets[${i}]`, 'invalid_value')
          }
        })
        return addRoute(db, body.model, targets, { replace: body.replace, policy: body.policy ?? null })
      },
    },
    {
      method: 'DELETE',
      path: '/routes/**:model',
      action: 'routes.remove',
      async run(call) {
        const model = decodeURIComponent(call.params.model ?? '')
        await removeRoute(db, model)
        return { object: 'route', model, deleted: true }
      },
    },

    // policies
    { method: 'GET', path: '/policies', run: async () => list(await listPolicies(db)) },
    { method: 'GET', path: '/policies/:name', run: (call) => getPolicy(db, call.params.name!) },
    {
      method: 'PUT',
      path: '/policies/:name',
      action: 'policies.set',
      // setPolicy validates: an invalid field is a 400 whose param is its path, e.g. retry.max_attempts
      run: async (call) => setPolicy(db, call.params.name!, await call.rawBody()),
    },
    {
      method: 'DELETE',
      path: '/policies/:name',
      action: 'policies.remove',
      async run(call) {
        await removePolicy(db, call.params.name!)
        return { object: 'policy', name: call.params.name, deleted: true }
      },
    },

    // circuit overrides
    {
      method: 'GET',
      path: '/circuits',
      async run(call) {
        const provider = call.query.get('provider')
        const key = call.query.get('key')
        if (key && !provider) throw invalidRequest('Filtering by key needs ?provider= as well.', 'provider')
        return list(await listCircuits(db, provider ? { provider, ...(key ? { key } : {}) } : undefined))
      },
    },
    ...(['open', 'close', 'reset'] as const).map(
      (action: CircuitAction): AdminEndpoint => ({
        method: 'POST',
        path: `/circuits/${action}`,
        action: `circuits.${action}`,
        async run(call) {
          const body = await call.body(circuitBody)
          const result = await setCircuitOverride(db, body, action)
          return { circuit: result.name, override: result.mode ?? 'auto' }
        },
      }),
    ),
  ]
}

async function keyProvider(call: AdminCall): Promise<string | undefined> {
  const body = await call.optionalBody(keyRefBody)
  return body.provider ?? call.query.get('provider') ?? undefined
}

function flag(value: string | null): boolean {
  return value === '' || value === '1' || value === 'true'
}

/** '30d', '12h', '2w' from now, or an ISO date in the future. */
function parseExpiry(text: string, now = Date.now()): string {
  const ms = parseDuration(text)
  if (ms !== null) return new Date(now + ms).toISOString()
  const date = Date.parse(text)
  if (Number.isNaN(date)) throw invalidRequest(`expires takes a duration like 30d, 12h, 2w or a date like 2027-01-31, not '${text}'.`, 'expires', 'invalid_value')
  if (date <= now) throw invalidRequest(`expires ${text} is in the past.`, 'expires', 'invalid_value')
  return new Date(date).toISOString()
}
