/**
 * GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items, on h3. Only the client that
 * made a response can see or delete it. One made natively is asked of the provider and key that made it;
 * one made by translation is answered from the proxy's store.
 */
import type { H3, H3Event } from 'h3'
import { ProxyError } from '../../core/errors.js'
import type { Caller, Gateway } from '../../gateway/gateway.js'
import type { CallContext, ProviderAdapter } from '../../providers/types.js'
import type { ResponseBook } from '../../store/response-book.js'
import type { StoredResponse } from '../../store/repos/responses.js'
import { authenticate } from '../auth.js'
import { admit, finish, type LifecycleDeps } from '../lifecycle.js'
import { beginRequest, type RequestState } from '../request-context.js'

export interface ResponsesRouteDeps extends LifecycleDeps {
  gateway: Gateway
  book: ResponseBook
}

type NativeMember = 'responseGet' | 'responseDelete' | 'responseInputItems'
type Native = (adapter: Required<Pick<ProviderAdapter, NativeMember>>, ctx: CallContext) => Promise<Record<string, unknown>>

export function registerResponsesRoutes(app: H3, deps: ResponsesRouteDeps): void {
  /** Authenticates, admits, and finds the client's response; a 404 for any other client's. */
  const lookup = async (event: H3Event): Promise<{ state: RequestState; stored: StoredResponse; caller: Caller }> => {
    const state = beginRequest(event)
    const client = authenticate(event.req.headers, deps.config())
    state.record.client = client.name
    const id = decodeURIComponent(event.context.params?.id ?? '')
    const limits = await admit(deps, state, client, null)
    if (limits) for (const name in limits) event.res.headers.set(name, limits[name]!)
    const stored = await deps.book.get(id, client.id)
    if (!stored) throw new ProxyError({ status: 404, type: 'invalid_request_error', code: 'not_found', param: 'response_id', message: `No response with id '${id.slice(0, 100)}' was found for this client.` })
    state.record.model = stored.model
    const caller: Caller = { client, requestId: state.record.requestId, signal: event.req.signal, attempts: state.record.attempts, pin: { provider: stored.provider, key: stored.keyLabel } }
    return { state, stored, caller }
  }
  /** Asks the provider that made a native response. */
  const upstream = async (state: RequestState, stored: StoredResponse, caller: Caller, member: NativeMember, call: Native) => {
    const served = await deps.gateway.run(caller, {
      model: stored.model,
      what: `the Responses API (${member})`,
      supports: (a) => typeof a[member] === 'function',
      call: (a, ctx) => call(a as Required<Pick<ProviderAdapter, NativeMember>>, ctx),
    })
    state.record.provider = served.provider
    state.record.upstreamModel = served.upstreamModel
    state.record.key = served.key
    return served.value
  }

  app.get('/v1/responses/:id', async (event) => {
    const { state, stored, caller } = await lookup(event)
    const answer = stored.native ? await upstream(state, stored, caller, 'responseGet', (a, ctx) => a.responseGet(stored.id, ctx)) : stored.response
    finish(deps, state, 200)
    return answer
  })

  app.delete('/v1/responses/:id', async (event) => {
    const { state, stored, caller } = await lookup(event)
    const answer = stored.native ? await upstream(state, stored, caller, 'responseDelete', (a, ctx) => a.responseDelete(stored.id, ctx)) : { id: stored.id, object: 'response', deleted: true }
    await deps.book.delete(stored.id, caller.client.id)
    finish(deps, state, 200)
    return answer
  })

  app.get('/v1/responses/:id/input_items', async (event) => {
    const { state, stored, caller } = await lookup(event)
    let answer: unknown
    if (stored.native) {
      const query = event.url.search.startsWith('?') ? event.url.search.slice(1) : event.url.search
      answer = await upstream(state, stored, caller, 'responseInputItems', (a, ctx) => a.responseInputItems(stored.id, query, ctx))
    } else {
      answer = inputItemList(stored.input ?? [], event.url.searchParams)
    }
    finish(deps, state, 200)
    return answer
  })
}

/** The Responses API's list of input items: newest first unless `order=asc`, `limit` (1-100, default 20), `after`. */
function inputItemList(items: unknown[], query: URLSearchParams) {
  const withIds = items as Array<{ id?: string }>
  let list = query.get('order') === 'asc' ? [...withIds] : [...withIds].reverse()
  const after = query.get('after')
  if (after) {
    const at = list.findIndex((item) => item.id === after)
    list = at === -1 ? [] : list.slice(at + 1)
  }
  const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20))
  const data = list.slice(0, limit)
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: list.length > limit }
}
