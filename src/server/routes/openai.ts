/**
 * The OpenAI endpoints. Each is the same shape: validate the body once, authenticate, hand the typed
 * request to the gateway, and write the answer (JSON, or SSE pulled chunk by chunk).
 */
import type { H3, H3Event } from 'h3'
import type { z } from 'zod'
import {
  chatRequestSchema,
  completionRequestSchema,
  embeddingRequestSchema,
  parseRequest,
  type Usage,
} from '../../core/openai-schema.js'
import type { Caller, Gateway, Served } from '../../gateway/gateway.js'
import { estimateChatTokens, estimateCompletionTokens, estimateEmbeddingTokens } from '../../limits/estimate.js'
import type { Limiter } from '../../limits/limiter.js'
import type { ConfigSnapshot } from '../../store/snapshot.js'
import type { Telemetry } from '../../telemetry/request-record.js'
import { authenticate } from '../auth.js'
import { readJsonBody } from '../body.js'
import { toProxyError } from '../error-response.js'
import { beginRequest, type RequestState } from '../request-context.js'
import { sseStream } from '../sse.js'

export interface OpenAIRouteDeps {
  gateway: Gateway
  config: () => ConfigSnapshot
  telemetry: Telemetry
  maxBodyBytes: number
  /** rate limits and quotas; none are applied without it */
  limits?: Limiter
  /** wraps an SSE body so it ends with a `server_shutting_down` error event at the drain deadline (shutdown.ts) */
  endOnShutdown?: (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>
}

interface Endpoint<S extends z.ZodType, R, C> {
  schema: S
  call: (req: z.infer<S>, caller: Caller) => Promise<Served<R>>
  stream?: (req: z.infer<S>, caller: Caller) => Promise<Served<AsyncIterable<C>>>
  /** the request's token estimate for token limits, given a text counter */
  tokens: (req: z.infer<S>, count: (text: string) => number) => number
}

interface WithUsage {
  usage?: Partial<Usage> | null
  choices?: unknown[]
}

export function registerOpenAIRoutes(app: H3, deps: OpenAIRouteDeps): void {
  const { gateway } = deps
  app.post('/v1/chat/completions', endpoint(deps, { schema: chatRequestSchema, call: (r, c) => gateway.chat(r, c), stream: (r, c) => gateway.chatStream(r, c), tokens: estimateChatTokens }))
  app.post('/v1/completions', endpoint(deps, { schema: completionRequestSchema, call: (r, c) => gateway.completion(r, c), stream: (r, c) => gateway.completionStream(r, c), tokens: estimateCompletionTokens }))
  app.post('/v1/embeddings', endpoint(deps, { schema: embeddingRequestSchema, call: (r, c) => gateway.embeddings(r, c), tokens: estimateEmbeddingTokens }))

  app.get('/v1/models', async (event) => {
    const state = beginRequest(event)
    const client = authenticate(event.req.headers, deps.config())
    state.record.client = client.name
    await admit(deps, event, state, client, null)
    const data = gateway.models(client)
    finish(deps, state, 200)
    return { object: 'list', data }
  })
  app.get('/v1/models/**:id', async (event) => {
    const state = beginRequest(event)
    const client = authenticate(event.req.headers, deps.config())
    state.record.client = client.name
    const id = decodeURIComponent(event.context.params?.id ?? '')
    state.record.model = id
    await admit(deps, event, state, client, null)
    const model = gateway.model(client, id)
    finish(deps, state, 200)
    return model
  })
}

function endpoint<S extends z.ZodType, R extends WithUsage, C extends WithUsage>(deps: OpenAIRouteDeps, spec: Endpoint<S, R, C>) {
  return async (event: H3Event) => {
    const state = beginRequest(event)
    const client = authenticate(event.req.headers, deps.config())
    state.record.client = client.name
    const body = await readJsonBody(event, deps.maxBodyBytes)
    deps.telemetry.captureRequest?.(state.record, client, body)
    const req = parseRequest(spec.schema, body) as z.infer<S> & { model: string; stream?: boolean | null; stream_options?: { include_usage?: boolean } | null }
    state.record.model = req.model
    await admit(deps, event, state, client, req.model, (count) => spec.tokens(req, count))
    const caller: Caller = { client, requestId: state.record.requestId, signal: event.req.signal, attempts: state.record.attempts }

    if (req.stream && spec.stream) {
      state.record.stream = true
      const served = await spec.stream(req, caller)
      describe(event, state, served)
      deps.telemetry.streamStarted?.(state.record, performance.now() - state.started)
      const wantsUsage = req.stream_options?.include_usage === true
      const headers = event.res.headers
      headers.set('content-type', 'text/event-stream; charset=utf-8')
      headers.set('cache-control', 'no-cache')
      headers.set('x-accel-buffering', 'no')
      const body = sseStream<C>(served.value, {
        toError: (err) => toProxyError(err, state.record.requestId, state.record.path),
        onFirstWrite: () => {
          state.record.ttftMs = Math.round((performance.now() - state.started) * 100) / 100
        },
        onChunk: (chunk) => {
          state.record.capture?.chunk(chunk)
          if (chunk.usage) {
            state.record.usage = normalizeUsage(chunk.usage)
            // Usage is always requested upstream for accounting; the client sees it only if it asked.
            if (!wantsUsage) {
              if (!chunk.choices || chunk.choices.length === 0) return false
              delete chunk.usage
            }
          }
          return true
        },
        onEnd: ({ error, cancelled }) => {
          if (error) state.record.error = { type: error.type, code: error.code, message: error.message }
          finish(deps, state, cancelled ? 499 : 200)
        },
      })
      return deps.endOnShutdown ? deps.endOnShutdown(body) : body
    }

    const served = await spec.call(req, caller)
    describe(event, state, served)
    state.record.usage = served.value.usage ? normalizeUsage(served.value.usage) : null
    if (state.record.capture) state.record.capture.response = served.value
    finish(deps, state, 200)
    return served.value
  }
}

function describe(event: H3Event, state: RequestState, served: Served<unknown>): void {
  state.record.provider = served.provider
  state.record.upstreamModel = served.upstreamModel
  state.record.key = served.key
  const h = event.res.headers
  h.set('x-proxy-provider', served.provider)
  h.set('x-proxy-model', served.upstreamModel)
  h.set('x-proxy-attempts', String(served.attempts.length))
  // what kind of fallback served: 'key' (another key of the first provider), 'provider' (a later target), 'global' (the global route)
  if (served.fallback) h.set('x-proxy-fallback', served.fallback)
  if (served.droppedParams?.length) h.set('x-proxy-dropped-params', [...new Set(served.droppedParams)].join(','))
}

/**
 * Checks the request against every limit and quota that applies (429 or 503 when refused) and puts the
 * x-ratelimit-* headers on the answer; the admission is settled with the actual usage in finish().
 */
async function admit(deps: OpenAIRouteDeps, event: H3Event, state: RequestState, client: Caller['client'], model: string | null, tokens?: (count: (text: string) => number) => number): Promise<void> {
  if (!deps.limits) return
  const admission = await deps.limits.admit({ client, ip: state.record.ip, model, tokens })
  state.admission = admission
  for (const name in admission.headers) event.res.headers.set(name, admission.headers[name]!)
}

function normalizeUsage(u: Partial<Usage>): RequestState['record']['usage'] {
  const prompt = u.prompt_tokens ?? 0
  const completion = u.completion_tokens ?? 0
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: u.total_tokens ?? prompt + completion }
}

export function finish(deps: { telemetry: Telemetry }, state: RequestState, status: number): void {
  if (state.reported) return
  state.reported = true
  state.record.status = status
  state.record.ms = Math.round((performance.now() - state.started) * 100) / 100
  state.admission?.settle({ usage: state.record.usage, served: state.record.provider !== null })
  deps.telemetry.requestDone(state.record)
}
