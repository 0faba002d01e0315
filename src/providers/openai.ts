/**
 * OpenAI and any host that speaks its API (Groq, Together, vLLM, LM Studio…). The request passes through
 * with only `model` rewritten; unknown parameters reach the upstream untouched.
 */
import { ProxyError } from '../core/errors.js'
import type { ChatCompletion, ChatRequest, Completion, CompletionRequest, EmbeddingRequest, EmbeddingResponse } from '../core/openai-schema.js'
import { callUpstream, fetchJson, joinUrl, type UpstreamResponse } from './shared/http.js'
import { readSse } from './shared/stream-readers.js'
import { attachRawJson } from '../core/raw-json.js'
import { parseErrorBody, redactSecrets, upstreamNetworkError } from './shared/upstream-error.js'
import { chatAnswerChunks, completionAnswerChunks } from './openai-answer-chunks.js'
import type { AdapterDeps, CallContext, ProviderAdapter, ProviderEndpoint } from './types.js'

export const OPENAI_BASE_URL = 'https://api.openai.com/v1'

/** The operations of OpenAI's API the adapter calls, as paths relative to an OpenAI base URL. */
export type OpenAIPath = 'chat/completions' | 'completions' | 'embeddings' | 'models'

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

  const streamBody = <T extends { stream?: boolean | null; stream_options?: unknown }>(req: T, ctx: CallContext) => {
    const body: Record<string, unknown> = { ...req, model: ctx.upstreamModel, stream: true }
    if (askStreamUsage) body.stream_options = { ...(req.stream_options as object | undefined), include_usage: true }
    // A host that rejects stream_options rejects the client's own too.
    else delete body.stream_options
    return body
  }

  return {
    endpoint,
    async chat(req: ChatRequest, ctx) {
      return postJson<ChatCompletion>(dialect.url('chat/completions', ctx), { ...req, model: ctx.upstreamModel, stream: false }, ctx)
    },
    async chatStream(req: ChatRequest, ctx) {
      const res = await post(dialect.url('chat/completions', ctx), streamBody(req, ctx), ctx)
      return streamOf(res, endpoint.name, ctx, chatAnswerChunks)
    },
    async completion(req: CompletionRequest, ctx) {
      return postJson<Completion>(dialect.url('completions', ctx), { ...req, model: ctx.upstreamModel, stream: false }, ctx)
    },
    async completionStream(req: CompletionRequest, ctx) {
      const res = await post(dialect.url('completions', ctx), streamBody(req, ctx), ctx)
      return streamOf(res, endpoint.name, ctx, completionAnswerChunks)
    },
    async embeddings(req: EmbeddingRequest, ctx) {
      return postJson<EmbeddingResponse>(dialect.url('embeddings', ctx), { ...req, model: ctx.upstreamModel }, ctx)
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
        throw new ProxyError({ status: 502, type: 'upstream_error', code: 'upstream_bad_stream', message: `Provider '${provider}' sent a stream event that is not JSON.` })
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

/** The string-valued entries of a settings object (e.g. `headers`); anything else is dropped. */
export function stringRecord(value: unknown): Record<string, string> {
  if (!value || typeof value !== 'object') return {}
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<string, string>
}
