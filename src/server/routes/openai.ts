/**
 * The OpenAI model listing on h3, and what every OpenAI endpoint shares: limit admission and the end of
 * a request (settle the admission, report the record). The POST endpoints, the hot path, are served on
 * node:http directly (openai-post.ts).
 */
import type { H3, H3Event } from 'h3'
import type { ModelObject, Usage } from '../../core/openai-schema.js'
import type { Caller, Gateway } from '../../gateway/gateway.js'
import type { Limiter } from '../../limits/limiter.js'
import type { ConfigSnapshot } from '../../store/snapshot.js'
import type { Telemetry } from '../../telemetry/request-record.js'
import { authenticate } from '../auth.js'
import { beginRequest, type RequestState } from '../request-context.js'

export interface OpenAIRouteDeps {
  gateway: Gateway
  config: () => ConfigSnapshot
  telemetry: Telemetry
  maxBodyBytes: number
  /** deepest nesting of arrays and objects a body may have (DEFAULT_MAX_JSON_DEPTH when absent) */
  maxJsonDepth?: number
  /** rate limits and quotas; none are applied without it */
  limits?: Limiter
  /** aborted at the drain deadline of a shutdown: open streams end with a `server_shutting_down` error event */
  shutdown?: AbortSignal
}

export function registerModelRoutes(app: H3, deps: OpenAIRouteDeps): void {
  const { gateway } = deps
  app.get('/v1/models', async (event) => {
    const state = beginRequest(event)
    const client = authenticate(event.req.headers, deps.config())
    state.record.client = client.name
    setHeaders(event, await admit(deps, state, client, null))
    const data = gateway.models(client)
    finish(deps, state, 200)
    // Claude Code discovers models with the Anthropic SDK, which sends anthropic-version
    if (event.req.headers.has('anthropic-version')) return anthropicModelList(data)
    return { object: 'list', data }
  })
  app.get('/v1/models/**:id', async (event) => {
    const state = beginRequest(event)
    const client = authenticate(event.req.headers, deps.config())
    state.record.client = client.name
    const id = decodeURIComponent(event.context.params?.id ?? '')
    state.record.model = id
    setHeaders(event, await admit(deps, state, client, null))
    const model = gateway.model(client, id)
    finish(deps, state, 200)
    return event.req.headers.has('anthropic-version') ? anthropicModel(model) : model
  })
}

/** A model in the Anthropic Models API's shape. */
function anthropicModel(m: ModelObject) {
  return { type: 'model', id: m.id, display_name: m.id, created_at: new Date(m.created * 1000).toISOString() }
}

function anthropicModelList(models: ModelObject[]) {
  const data = models.map(anthropicModel)
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null }
}

function setHeaders(event: H3Event, headers: Record<string, string> | undefined): void {
  if (headers) for (const name in headers) event.res.headers.set(name, headers[name]!)
}

/**
 * Checks the request against every limit and quota that applies (throws a 429 or 503 when refused) and
 * returns the x-ratelimit-* headers for the answer; the admission is settled with the actual usage in finish().
 */
export async function admit(deps: Pick<OpenAIRouteDeps, 'limits'>, state: RequestState, client: Caller['client'], model: string | null, tokens?: (count: (text: string) => number) => number): Promise<Record<string, string> | undefined> {
  if (!deps.limits) return undefined
  const admission = await deps.limits.admit({ client, ip: state.record.ip, model, tokens })
  state.admission = admission
  return admission.headers
}

export function normalizeUsage(u: Partial<Usage>): RequestState['record']['usage'] {
  const prompt = u.prompt_tokens ?? 0
  const completion = u.completion_tokens ?? 0
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: u.total_tokens ?? prompt + completion }
}

export function finish(deps: { telemetry: Telemetry }, state: RequestState, status: number): void {
  if (state.reported) return
  state.reported = true
  state.record.status = status
  state.record.ms = Math.round((performance.now() - state.started) * 100) / 100
  state.admission?.settle({ usage: state.record.usage, served: state.record.provider !== null, estimated: state.record.usageEstimated })
  deps.telemetry.requestDone(state.record)
}
