/**
 * The model listing on h3, in OpenAI's shape (or Anthropic's, for Anthropic's clients). The model calls
 * themselves are served through the lifecycle (lifecycle.ts).
 */
import type { H3, H3Event } from 'h3'
import type { ModelObject } from '../../core/openai-schema.js'
import type { Gateway } from '../../gateway/gateway.js'
import { authenticate } from '../auth.js'
import { admit, finish, type LifecycleDeps } from '../lifecycle.js'
import { beginRequest } from '../request-context.js'

export interface OpenAIRouteDeps extends LifecycleDeps {
  gateway: Gateway
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
