/**
 * The OpenAI POST endpoints (chat completions, completions, embeddings): the hot path of the proxy,
 * served on node:http directly. Each is the same shape: authenticate, read and validate the body once,
 * admit it against the limits, hand the typed request to the gateway, and write the answer (JSON, or
 * SSE chunk by chunk).
 *
 * Why not through h3 like the other routes: h3 2 speaks web Request/Response, and on node:http every
 * request then costs a Request facade, Headers objects, a Response and a web stream adapter on the way
 * out: a large share of a request's CPU for a gateway whose whole job is to add nothing
 * (docs/performance.md). Everything else (models, admin, metrics, health, 404/405) stays on h3.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { z } from 'zod'
import type { ProxyError } from '../../core/errors.js'
import { chatRequestSchema, completionRequestSchema, embeddingRequestSchema, parseRequest } from '../../core/openai-schema.js'
import { LightAbort } from '../../core/signal-like.js'
import { acceptRequestId } from '../../core/ids.js'
import { forgetRawJson, rawJsonOf } from '../../core/raw-json.js'
import type { Caller, Served } from '../../gateway/gateway.js'
import { estimateChatPromptTokens, estimateChatTokens, estimateCompletionPromptTokens, estimateCompletionTokens, estimateEmbeddingTokens, roughCount } from '../../limits/estimate.js'
import type { Usage } from '../../core/openai-schema.js'
import { authenticateToken, tokenFrom } from '../auth.js'
import { parseJsonBody, readNodeBody } from '../body.js'
import { toProxyError } from '../error-response.js'
import { newRequestState, recordError, type RequestState } from '../request-context.js'
import { writeSse } from '../sse.js'
import { openAIShape } from '../chat/shape.js'
import { serverShuttingDown } from '../shutdown.js'
import { StreamedText } from '../streamed-text.js'
import { admit, finish, normalizeUsage, type OpenAIRouteDeps } from './openai.js'

interface Endpoint<S extends z.ZodType, R, C> {
  schema: S
  call: (req: z.infer<S>, caller: Caller) => Promise<Served<R>>
  stream?: (req: z.infer<S>, caller: Caller) => Promise<Served<AsyncIterable<C>>>
  /** the request's token estimate for token limits, given a text counter */
  tokens: (req: z.infer<S>, count: (text: string) => number) => number
  /** its prompt part, for a stream that ends without the upstream's usage */
  prompt?: (req: z.infer<S>, count: (text: string) => number) => number
}

interface WithUsage {
  usage?: Partial<Usage> | null
  choices?: unknown[]
}

type AnyEndpoint = Endpoint<z.ZodType, WithUsage, WithUsage>
type OutHeaders = Record<string, string>

/** Returns a node:http listener for the POST endpoints; it answers false for any other request, which is h3's. */
export function openAIPostHandler(deps: OpenAIRouteDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { gateway } = deps
  const endpoints = new Map<string, AnyEndpoint>([
    ['/v1/chat/completions', endpoint({ schema: chatRequestSchema, call: (r, c) => gateway.chat(r, c), stream: (r, c) => gateway.chatStream(r, c), tokens: estimateChatTokens, prompt: estimateChatPromptTokens })],
    ['/v1/completions', endpoint({ schema: completionRequestSchema, call: (r, c) => gateway.completion(r, c), stream: (r, c) => gateway.completionStream(r, c), tokens: estimateCompletionTokens, prompt: estimateCompletionPromptTokens })],
    ['/v1/embeddings', endpoint({ schema: embeddingRequestSchema, call: (r, c) => gateway.embeddings(r, c), tokens: estimateEmbeddingTokens })],
  ])
  return (req, res) => {
    if (req.method !== 'POST') return false
    const url = req.url ?? ''
    const q = url.indexOf('?')
    let path = q === -1 ? url : url.slice(0, q)
    let spec = endpoints.get(path)
    if (!spec) {
      // the SDKs sometimes add a trailing slash: the same endpoint
      if (!path.endsWith('/')) return false
      path = path.slice(0, -1)
      spec = endpoints.get(path)
      if (!spec) return false
    }
    // serve() answers every failure itself; this only keeps a bug in that answer from becoming an
    // unhandled rejection that takes the process down
    serve(deps, spec, path, req, res).catch(() => res.destroy())
    return true
  }
}

// Only to keep each endpoint's request type through the Map (which holds them as AnyEndpoint).
const endpoint = <S extends z.ZodType, R extends WithUsage, C extends WithUsage>(spec: Endpoint<S, R, C>) => spec as unknown as AnyEndpoint

async function serve(deps: OpenAIRouteDeps, spec: AnyEndpoint, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const h = req.headers
  const state = newRequestState(acceptRequestId(one(h['x-request-id'])), 'POST', path, req.socket.remoteAddress ?? null)
  const out: OutHeaders = { 'x-request-id': state.record.requestId }
  // Aborted when the client goes away before its answer is complete.
  const link = new LightAbort()
  const onClose = () => {
    if (!res.writableFinished) link.abort(new DOMException('The client closed the request.', 'AbortError'))
  }
  // on(), not once(): once() wraps the listener in two more objects, and it is removed by hand anyway
  res.on('close', onClose)
  try {
    const client = authenticateToken(tokenFrom(one(h.authorization), one(h['api-key']) ?? one(h['x-api-key'])), deps.config())
    state.record.client = client.name
    const body = parseJsonBody(await readNodeBody(req, deps.maxBodyBytes), deps.maxBodyBytes, deps.maxJsonDepth)
    deps.telemetry.captureRequest?.(state.record, client, body)
    const request = parseRequest(spec.schema, body) as { model: string; stream?: boolean | null; stream_options?: { include_usage?: boolean } | null }
    state.record.model = request.model
    const limitHeaders = await admit(deps, state, client, request.model, (count) => spec.tokens(request, count))
    if (limitHeaders) Object.assign(out, limitHeaders)
    const caller: Caller = { client, requestId: state.record.requestId, signal: link, attempts: state.record.attempts }

    if (request.stream && spec.stream) {
      state.record.stream = true
      const served = await spec.stream(request, caller)
      describe(out, state, served)
      deps.telemetry.streamStarted?.(state.record, performance.now() - state.started)
      out['content-type'] = 'text/event-stream; charset=utf-8'
      out['cache-control'] = 'no-cache'
      out['x-accel-buffering'] = 'no'
      res.writeHead(200, out)
      // The headers go out with the first chunk, in one write.
      const wantsUsage = request.stream_options?.include_usage === true
      const streamed = new StreamedText()
      await writeSse<WithUsage>(served.value, res, {
        shape: openAIShape,
        toError: (err) => toProxyError(err, state.record.requestId, path),
        shutdown: deps.shutdown,
        shutdownError: serverShuttingDown,
        onFirstWrite: () => {
          state.record.ttftMs = Math.round((performance.now() - state.started) * 100) / 100
        },
        onChunk: (chunk) => {
          state.record.capture?.chunk(chunk)
          streamed.add(chunk)
          if (chunk.usage) {
            state.record.usage = normalizeUsage(chunk.usage)
            // Usage is always requested upstream for accounting; the client sees it only if it asked.
            if (!wantsUsage) {
              if (!chunk.choices || chunk.choices.length === 0) return false
              delete chunk.usage
              forgetRawJson(chunk)
            }
          }
          return true
        },
        onEnd: ({ error, cancelled }) => {
          res.off('close', onClose)
          if (error) recordError(state, error)
          if (!state.record.usage) countStreamed(deps, spec, request, state, streamed)
          finish(deps, state, cancelled ? 499 : 200)
        },
      })
      return
    }

    const served = await spec.call(request, caller)
    res.off('close', onClose)
    describe(out, state, served)
    state.record.usage = served.value.usage ? normalizeUsage(served.value.usage) : null
    if (state.record.capture) state.record.capture.response = served.value
    // The upstream's own bytes when the adapter passed its answer through unchanged.
    const answer = rawJsonOf(served.value) ?? JSON.stringify(served.value)
    out['content-type'] = 'application/json'
    out['content-length'] = String(typeof answer === 'string' ? Buffer.byteLength(answer) : answer.length)
    res.writeHead(200, out)
    res.end(answer)
    // Accounting (limits settled, log line, metrics, audit) after the answer is on its way: it is the
    // same work either way, but before the write the client waited for it. Nothing runs in between
    // (this is one synchronous turn), so the client's next request still finds its usage settled.
    finish(deps, state, 200)
  } catch (err) {
    res.off('close', onClose)
    fail(deps, state, res, err)
  }
}

/**
 * A stream that ended without the upstream's usage (the client left, or the upstream reports none) is
 * accounted for what it wrote: the prompt estimate plus the tokens streamed, marked as counted, so the
 * limits charge at least the pre-call estimate.
 */
function countStreamed(deps: OpenAIRouteDeps, spec: AnyEndpoint, request: unknown, state: RequestState, streamed: StreamedText): void {
  const counter = () => deps.limits?.textCounter() ?? roughCount
  const prompt = spec.prompt ? spec.prompt(request, counter()) : 0
  const completion = streamed.tokens(counter())
  state.record.usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  state.record.usageEstimated = true
}

/** Where the answer came from, in x-proxy-* headers and in the request record. */
function describe(out: OutHeaders, state: RequestState, served: Served<unknown>): void {
  state.record.provider = served.provider
  state.record.upstreamModel = served.upstreamModel
  state.record.key = served.key
  out['x-proxy-provider'] = served.provider
  out['x-proxy-model'] = served.upstreamModel
  out['x-proxy-attempts'] = String(served.attempts.length)
  // what kind of fallback served: 'key' (another key of the first provider), 'provider' (a later target), 'global' (the global route)
  if (served.fallback) out['x-proxy-fallback'] = served.fallback
  if (served.droppedParams?.length) out['x-proxy-dropped-params'] = [...new Set(served.droppedParams)].join(',')
}

/** An error answer in OpenAI's shape; errors after the limit check still carry the x-ratelimit-* headers. */
function fail(deps: OpenAIRouteDeps, state: RequestState, res: ServerResponse, err: unknown): void {
  const error = toProxyError(err, state.record.requestId, state.record.path)
  recordError(state, error)
  if (!res.headersSent && !res.destroyed) writeError(state, res, error)
  // after the answer, as for a success
  finish(deps, state, error.status)
}

function writeError(state: RequestState, res: ServerResponse, error: ProxyError): void {
  const headers: OutHeaders = { 'content-type': 'application/json', 'x-request-id': state.record.requestId }
  const limitHeaders = state.admission?.headers
  if (limitHeaders) Object.assign(headers, limitHeaders)
  Object.assign(headers, error.headers)
  // An oversized body was not read to its end: the connection cannot carry another request.
  if (error.status === 413) headers.connection = 'close'
  const text = JSON.stringify(error.toJSON())
  headers['content-length'] = String(Buffer.byteLength(text))
  res.writeHead(error.status, headers)
  res.end(text)
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
