/**
 * OpenAI and any host that speaks its API (Groq, Together, vLLM, LM Studio…). The request passes through
 * with only `model` rewritten; unknown parameters reach the upstream untouched.
 *
 * The Responses API (POST /responses, GET/DELETE /responses/{id}, GET /responses/{id}/input_items) is
 * called natively for type `openai` (and Azure, which reuses this adapter), and for `openai-compatible`
 * hosts only with settings.responses = true: most compatible servers have no /responses.
 */
import { ProxyError } from '../core/errors.js'
import type { ChatCompletion, ChatRequest, Completion, CompletionRequest, EmbeddingRequest, EmbeddingResponse } from '../core/openai-schema.js'
import { callUpstream, fetchJson, joinUrl, type UpstreamResponse } from './shared/http.js'
import { nativeEvents, type NativeStreamRules } from './shared/native-stream.js'
import { forwardedHeaders } from './shared/pass-headers.js'
import { readSse } from './shared/stream-readers.js'
import { attachRawJson } from '../core/raw-json.js'
import { revised } from '../core/request-bytes.js'
import { parseErrorBody, redactSecrets, upstreamBadAnswer, UpstreamError, upstreamHttpError, upstreamNetworkError } from './shared/upstream-error.js'
import { chatAnswerChunks, completionAnswerChunks } from './openai-answer-chunks.js'
import type { AdapterDeps, CallContext, NativeBody, NativeEvent, ProviderAdapter, ProviderEndpoint } from './types.js'

export const OPENAI_BASE_URL = 'https://api.openai.com/v1'

/** The operations of OpenAI's API the adapter calls, as paths relative to an OpenAI base URL. */
export type OpenAIPath = 'chat/completions' | 'completions' | 'embeddings' | 'models' | 'responses'

/**
 * What differs between hosts that speak OpenAI's wire format: where each operation lives and how the key
 * travels. Azure OpenAI, for one, puts the deployment and api-version in the URL and wants an `api-key` header.
 */
export interface OpenAIDialect {
  url(path: OpenAIPath, ctx: CallContext): string
  authHeaders(apiKey: string): Record<string, string>
}

export function openAIDialect(baseUrl: string): OpenAIDialect {
  // The URLs are fixed per provider: join them once, not on every request.
  const urls: Record<OpenAIPath, string> = {
    'chat/completions': joinUrl(baseUrl, 'chat/completions'),
    completions: joinUrl(baseUrl, 'completions'),
    embeddings: joinUrl(baseUrl, 'embeddings'),
    models: joinUrl(baseUrl, 'models'),
    responses: joinUrl(baseUrl, 'responses'),
  }
  return { url: (path) => urls[path], authHeaders: (apiKey) => ({ authorization: `Bearer ${apiKey}` }) }
}

export function createOpenAIAdapter(endpoint: ProviderEndpoint, deps: AdapterDeps, dialect: OpenAIDialect = openAIDialect(endpoint.baseUrl ?? OPENAI_BASE_URL)): ProviderAdapter {
  const extraHeaders = stringRecord(endpoint.settings.headers)
  // Some OpenAI-compatible servers reject stream_options; operators can turn the usage request off.
  const askStreamUsage = endpoint.settings.stream_usage !== false

  // The auth headers of the last key used, made again only when the key changes: a provider's requests
  // mostly use one key, and these are built on every request.
  let authKey: string | null = null
  let auth: Record<string, string> = {}
  const headersFor = (ctx: CallContext, json: boolean): Record<string, string> => {
    // content-type here, so the request's one headers object is this one (callUpstream keeps it)
    const h: Record<string, string> = json ? { 'content-type': 'application/json', ...extraHeaders } : { ...extraHeaders }
    h['x-request-id'] = ctx.requestId
    if (ctx.apiKey) {
      if (ctx.apiKey !== authKey) {
        auth = dialect.authHeaders(ctx.apiKey)
        authKey = ctx.apiKey
      }
      Object.assign(h, auth)
    }
    return h
  }

  const post = (url: string, body: unknown, ctx: CallContext) =>
    callUpstream({ dispatcher: deps.dispatcher, provider: endpoint.name, url, headers: headersFor(ctx, true), body, ctx })
  // The answers pass through unchanged, so the server can write the upstream's own bytes.
  const postJson = <T>(url: string, body: unknown, ctx: CallContext) =>
    fetchJson<T>({ dispatcher: deps.dispatcher, provider: endpoint.name, url, headers: headersFor(ctx, true), body, ctx, keepRaw: true })

  // Native Responses calls also carry the client's own headers (OpenAI-Beta and the like); the operator's win.
  const nativeHeadersFor = (ctx: CallContext, json: boolean) => ({ ...forwardedHeaders(ctx.passHeaders), ...headersFor(ctx, json) })
  const nativeJson = (url: string, ctx: CallContext, method: 'GET' | 'POST' | 'DELETE', body?: NativeBody) =>
    fetchJson<NativeBody>({ dispatcher: deps.dispatcher, provider: endpoint.name, url, headers: nativeHeadersFor(ctx, body !== undefined), body, method, ctx, keepRaw: true })
  const responseUrl = (id: string, ctx: CallContext, suffix = '', query = '') => withPath(dialect.url('responses', ctx), `/${encodeURIComponent(id)}${suffix}`, query)
  const streamRules = responsesStreamRules(endpoint.name)
  const native: Partial<ProviderAdapter> = {
    async responses(body, ctx) {
      return nativeJson(dialect.url('responses', ctx), ctx, 'POST', revised(body, { model: ctx.upstreamModel, ...(body.stream ? { stream: false } : {}) }))
    },
    async responsesStream(body, ctx) {
      const url = dialect.url('responses', ctx)
      const res = await callUpstream({ dispatcher: deps.dispatcher, provider: endpoint.name, url, headers: nativeHeadersFor(ctx, true), body: revised(body, { model: ctx.upstreamModel, stream: true }), ctx })
      return nativeEvents(res, endpoint.name, ctx, streamRules)
    },
    responseGet: (id, ctx) => nativeJson(responseUrl(id, ctx), ctx, 'GET').catch(missingResponse),
    responseDelete: (id, ctx) => nativeJson(responseUrl(id, ctx), ctx, 'DELETE').catch(missingResponse),
    responseInputItems: (id, query, ctx) => nativeJson(responseUrl(id, ctx, '/input_items', query), ctx, 'GET').catch(missingResponse),
  }
  const speaksResponses = endpoint.type !== 'openai-compatible' || endpoint.settings.responses === true

  const streamBody = <T extends { stream?: boolean | null; stream_options?: unknown }>(req: T, ctx: CallContext) => {
    // A host that rejects stream_options rejects the client's own too (undefined: left out).
    const streamOptions = askStreamUsage ? { ...(req.stream_options as object | undefined), include_usage: true } : undefined
    return revised(req, { model: ctx.upstreamModel, stream: true, stream_options: streamOptions })
  }

  // OpenAI and Azure refuse message fields they do not know; the gateway's own reasoning extensions
  // (core/reasoning.ts), which translated turns carry, are left out for them. Other hosts get them as
  // they are (some read `reasoning` back).
  const chatRequest = endpoint.type === 'openai' || endpoint.type === 'azure' ? withoutReasoningExtensions : (req: ChatRequest) => req

  return {
    endpoint,
    ...(speaksResponses ? native : {}),
    async chat(req: ChatRequest, ctx) {
      return postJson<ChatCompletion>(dialect.url('chat/completions', ctx), revised(chatRequest(req), { model: ctx.upstreamModel, stream: false }), ctx)
    },
    async chatStream(req: ChatRequest, ctx) {
      const res = await post(dialect.url('chat/completions', ctx), streamBody(chatRequest(req), ctx), ctx)
      return streamOf(res, endpoint.name, ctx, chatAnswerChunks)
    },
    async completion(req: CompletionRequest, ctx) {
      return postJson<Completion>(dialect.url('completions', ctx), revised(req, { model: ctx.upstreamModel, stream: false }), ctx)
    },
    async completionStream(req: CompletionRequest, ctx) {
      const res = await post(dialect.url('completions', ctx), streamBody(req, ctx), ctx)
      return streamOf(res, endpoint.name, ctx, completionAnswerChunks)
    },
    async embeddings(req: EmbeddingRequest, ctx) {
      return postJson<EmbeddingResponse>(dialect.url('embeddings', ctx), revised(req, { model: ctx.upstreamModel }), ctx)
    },
    async listModels(ctx) {
      const body = await fetchJson<{ data?: Array<{ id: string }> }>({ dispatcher: deps.dispatcher, provider: endpoint.name, url: dialect.url('models', ctx), headers: headersFor(ctx, false), method: 'GET', ctx })
      return (body.data ?? []).map((m) => m.id)
    },
  }
}

/** How an event stream may begin: a field name and a colon, or a comment. */
const SSE_START = /^(?:data|event|id|retry)?:/

/**
 * The answer to a stream request as chunks. An event stream is read as it comes. Some OpenAI-compatible
 * servers answer `stream: true` with the whole answer as JSON: it becomes the chunks its stream would
 * have carried. Anything else fails here, before the client has seen a byte. Without an event-stream
 * content type the first bytes decide, since servers mislabel streams both ways.
 */
async function streamOf<T>(res: UpstreamResponse, provider: string, ctx: CallContext, fromAnswer: (answer: unknown) => T[] | null): Promise<AsyncIterable<T>> {
  const type = String(res.headers['content-type'] ?? '')
  if (type.includes('text/event-stream')) return sseObjects<T>(res.body, res, provider, ctx)
  const parts: Buffer[] = []
  try {
    let head = ''
    while (head === '') {
      const r = await res.body.next()
      if (r.done) break
      parts.push(r.value)
      head = r.value.toString('utf8', 0, Math.min(r.value.length, 16)).trimStart()
    }
    if (SSE_START.test(head)) return sseObjects<T>(prefixed(parts, res.body), res, provider, ctx)
    if (head.startsWith('{')) for (let r = await res.body.next(); !r.done; r = await res.body.next()) parts.push(r.value)
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  }
  const text = Buffer.concat(parts).toString('utf8')
  let answer: unknown
  try {
    answer = JSON.parse(text)
  } catch {
    res.body.release()
    throw notAStream(provider, type, text)
  }
  const error = (answer as { error?: unknown } | null)?.error
  if (error) {
    throw new ProxyError({ status: 502, type: 'upstream_error', code: 'upstream_stream_error', message: `Provider '${provider}' answered the stream request with an error: ${redactSecrets(parseErrorBody(text).message ?? 'unknown error')}` })
  }
  const chunks = fromAnswer(answer)
  if (!chunks) throw notAStream(provider, type, text)
  return (async function* () {
    yield* chunks
  })()
}

function notAStream(provider: string, type: string, text: string): ProxyError {
  const what = text.trimStart().startsWith('{') ? 'JSON that is not a completion' : text.trim() ? `${type || 'an answer without a content type'}` : 'an empty body'
  return new ProxyError({
    status: 502,
    type: 'upstream_error',
    code: 'upstream_bad_stream',
    message: `Provider '${provider}' answered a stream request with ${what}, neither an event stream nor a JSON answer. Check the provider's base URL.`,
  })
}

async function* prefixed(first: Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* first
  yield* rest
}

/** Upstream SSE (`data: {…}` … `data: [DONE]`) as objects; an `error` payload mid-stream becomes a thrown ProxyError. */
async function* sseObjects<T>(source: AsyncIterable<Buffer>, res: UpstreamResponse, provider: string, ctx: CallContext): AsyncGenerator<T> {
  let finished = false
  try {
    for await (const event of readSse(source)) {
      if (event.data === '[DONE]') {
        finished = true
        return
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(event.data)
      } catch {
        throw upstreamBadAnswer(provider, 'a stream event that is not JSON', 'upstream_bad_stream')
      }
      const error = (parsed as { error?: { message?: string } }).error
      // Written to the client as the upstream sent it, unless someone changes the chunk on the way; data
      // spread over several lines is serialised again, as one `data:` line must hold it.
      if (!error && !event.data.includes('\n')) attachRawJson(parsed, event.data)
      if (error) {
        throw new ProxyError({
          status: 502,
          type: 'upstream_error',
          code: 'upstream_stream_error',
          message: `Provider '${provider}' failed mid-stream: ${redactSecrets(error.message ?? 'unknown error')}`,
        })
      }
      yield parsed as T
    }
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  } finally {
    // read to its end when it finished (the connection is reused), dropped when the reader left early
    if (!finished) res.body.release()
  }
}

/** `url` with `suffix` added to its path and `query` (with or without its '?') to its query string. */
export function withPath(url: string, suffix: string, query = ''): string {
  const q = url.indexOf('?')
  const own = q < 0 ? '' : url.slice(q + 1)
  const extra = query.replace(/^\?/, '')
  const search = own && extra ? `${own}&${extra}` : own || extra
  return (q < 0 ? url : url.slice(0, q)) + suffix + (search ? `?${search}` : '')
}

/**
 * A 404 for a response id means the response is not there (never stored, deleted, or another key's): the
 * client's own 404, not the misrouted provider the shared mapper assumes for a 404 on create.
 */
function missingResponse(err: unknown): never {
  if (err instanceof UpstreamError && err.upstreamStatus === 404) {
    throw new UpstreamError({ fault: 'not_found', upstreamStatus: 404, status: 404, type: 'invalid_request_error', code: 'not_found', message: err.detail ?? 'No response with that id was found.' })
  }
  throw err
}

/** Responses streams end with completed, failed or incomplete; an `error` event is thrown. */
function responsesStreamRules(provider: string): NativeStreamRules {
  return { errorOf: (event) => (event.type === 'error' ? responsesStreamError(provider, event) : null), terminal: new Set(['response.completed', 'response.failed', 'response.incomplete']) }
}

/**
 * A Responses `error` event ({type:'error', code, message, param}) through the shared mapper, with the
 * status its code stands for, so a rate limit mid-stream stays a rate limit and a bad request stays one.
 */
export function responsesStreamError(provider: string, event: NativeEvent): ProxyError {
  const e = (event.error && typeof event.error === 'object' ? event.error : event) as { code?: unknown; message?: unknown; param?: unknown }
  const code = typeof e.code === 'string' ? e.code : null
  const status = code === 'rate_limit_exceeded' || code === 'insufficient_quota' ? 429 : code && /^(invalid|context_length|unsupported)/.test(code) ? 400 : 500
  const message = typeof e.message === 'string' ? e.message : (code ?? 'the stream failed')
  return upstreamHttpError(provider, status, { message, code, param: typeof e.param === 'string' ? e.param : null })
}

/**
 * The request without the assistant messages' `reasoning` and `thinking_blocks`: the same object when no
 * message has them (requests from OpenAI clients never do), so the common case copies nothing.
 */
export function withoutReasoningExtensions(req: ChatRequest): ChatRequest {
  const has = (m: ChatRequest['messages'][number]) => m.role === 'assistant' && ('thinking_blocks' in m || 'reasoning' in m)
  if (!req.messages.some(has)) return req
  return {
    ...req,
    messages: req.messages.map((m) => {
      if (!has(m)) return m
      const { thinking_blocks: _blocks, reasoning: _text, ...rest } = m as typeof m & { thinking_blocks?: unknown; reasoning?: unknown }
      return rest as typeof m
    }),
  }
}

/** The string-valued entries of a settings object (e.g. `headers`); anything else is dropped. */
export function stringRecord(value: unknown): Record<string, string> {
  if (!value || typeof value !== 'object') return {}
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<string, string>
}
