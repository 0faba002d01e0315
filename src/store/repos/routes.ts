import type { Kysely } from 'kysely'
import { conflict, invalidRequest, notFound } from '../../core/errors.js'
import { nowIso } from '../time.js'
import type { Database } from '../schema.js'
import { getProvider } from './providers.js'

export interface RouteTargetInput {
  provider: string
  upstreamModel: string
  weight?: number
}

export interface RouteSummary {
  id: number
  model: string
  policy: string | null
  targets: Array<{ provider: string; upstreamModel: string; weight: number }>
  createdAt: string
}

/** Parses the CLI form `provider/upstream-model`; the upstream model may itself contain '/' (e.g. OpenRouter ids). */
export function parseTarget(text: string): RouteTargetInput {
  const slash = text.indexOf('/')
  if (slash <= 0 || slash === text.length - 1) {
    throw invalidRequest(`Target '${text}' must look like <provider>/<upstream-model>, e.g. openai/gpt-4o-mini.`, 'target')
  }
  return { provider: text.slice(0, slash), upstreamModel: text.slice(slash + 1) }
}

export async function addRoute(
  db: Kysely<Database>,
  model: string,
  targets: RouteTargetInput[],
  opts: { replace?: boolean; policy?: string | null } = {},
): Promise<RouteSummary> {
  if (!model.trim() || /\s/.test(model)) throw invalidRequest(`Model name '${model}' must be non-empty and contain no white space.`, 'model')
  if (targets.length === 0) throw invalidRequest('A model needs at least one --target <provider>/<upstream-model>.', 'target')
  const resolved: Array<RouteTargetInput & { providerId: number }> = []
  for (const t of targets) resolved.push({ ...t, providerId: (await getProvider(db, t.provider)).id })
  await db.transaction().execute(async (tx) => {
    const existing = await tx.selectFrom('routes').select('id').where('model', '=', model).executeTakeFirst()
    if (existing && !opts.replace) throw conflict(`Model '${model}' is already routed. Pass --replace to change its targets, or remove it first.`)
    if (existing) await tx.deleteFrom('routes').where('id', '=', existing.id).execute()
    const route = await tx
      .insertInto('routes')
      .values({ model, policy: opts.policy ?? null, created_at: nowIso() })
      .returning('id')
      .executeTakeFirstOrThrow()
    let position = 0
    for (const t of resolved) {
      await tx
        .insertInto('route_targets')
        .values({ route_id: route.id, position: position++, provider_id: t.providerId, upstream_model: t.upstreamModel, weight: t.weight ?? 1 })
        .execute()
    }
  })
  return (await listRoutes(db)).find((r) => r.model === model)!
}

export async function listRoutes(db: Kysely<Database>): Promise<RouteSummary[]> {
  const routes = await db.selectFrom('routes').selectAll().orderBy('model').execute()
  const targets = await db
    .selectFrom('route_targets')
    .innerJoin('providers', 'providers.id', 'route_targets.provider_id')
    .select(['route_targets.route_id', 'route_targets.upstream_model', 'route_targets.weight', 'providers.name as provider'])
    .orderBy('route_targets.route_id')
    .orderBy('route_targets.position')
    .execute()
  return routes.map((r) => ({
    id: r.id,
    model: r.model,
    policy: r.policy,
    createdAt: r.created_at,
    targets: targets.filter((t) => t.route_id === r.id).map((t) => ({ provider: t.provider, upstreamModel: t.upstream_model, weight: t.weight })),
  }))
}

export async function removeRoute(db: Kysely<Database>, model: string): Promise<void> {
  const result = await db.deleteFrom('routes').where('model', '=', model).executeTakeFirst()
  if (Number(result.numDeletedRows) === 0) throw notFound(`No route for model '${model}'. List them with 'proxy models ls'.`)
}
