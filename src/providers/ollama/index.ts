/**
 * Ollama's native API (`--type ollama`, default base URL http://localhost:11434, no key needed):
 * /api/chat for chat (NDJSON streaming, `stream` always sent since Ollama streams by default),
 * /api/generate for legacy completions, /api/embed for embeddings and /api/tags for listing models.
 * A key, when one is added, is sent as a bearer token (for Ollama behind an authenticating proxy).
 *
 * settings: num_ctx, options.NAME=value (any Modelfile parameter, e.g. options.top_k=20), keep_alive,
 * headers.NAME=value.
 */
import { ProxyError } from '../../core/errors.js'
import type { EmbeddingResponse } from '../../core/openai-schema.js'
import { stringRecord } from '../openai.js'
import { callUpstream, joinUrl, readJson, type UpstreamResponse } from '../shared/http.js'
import { readNdjson } from '../shared/stream-readers.js'
import { readAnswer, upstreamBadAnswer, upstreamNetworkError } from '../shared/upstream-error.js'
import type { AdapterDeps, CallContext, ProviderAdapter, ProviderEndpoint } from '../types.js'
import { droppedParams, readOllamaSettings, toOllamaChat, toOllamaEmbed, toOllamaGenerate } from './request.js'
import { toChatChunks, toChatCompletion, toCompletion, toCompletionChunks } from './response.js'
import type { OllamaChatResponse, OllamaEmbedResponse, OllamaGenerateResponse, OllamaTagsResponse } from './wire.js'

export const OLLAMA_BASE_URL = 'http://localhost:11434'

/** The server root: a base URL copied with Ollama's `/api` or its OpenAI-compatible `/v1` still works. */
export function ollamaRoot(baseUrl: string | null): string {
  return (baseUrl ?? OLLAMA_BASE_URL).replace(/\/+$/, '').replace(/\/(api|v1)$/, '')
}

export function createOllamaAdapter(endpoint: ProviderEndpoint, deps: AdapterDeps): ProviderAdapter {
  const root = ollamaRoot(endpoint.baseUrl)
  const settings = readOllamaSettings(endpoint.settings)
  const extraHeaders = stringRecord(endpoint.settings.headers)
  const provider = endpoint.name

  const call = async (path: string, ctx: CallContext, body?: unknown, dropped: string[] = []): Promise<UpstreamResponse> => {
    for (const param of dropped) ctx.warn?.(param)
    const headers: Record<string, string> = { ...extraHeaders, 'x-request-id': ctx.requestId }
    if (ctx.apiKey) headers.authorization = `Bearer ${ctx.apiKey}`
    try {
      return await callUpstream({ dispatcher: deps.dispatcher, provider, url: joinUrl(root, path), headers, body, method: body === undefined ? 'GET' : 'POST', ctx })
    } catch (err) {
      throw withPullHint(provider, ctx.upstreamModel, err)
    }
  }

  return {
    endpoint,
    async chat(req, ctx) {
      const res = await call('api/chat', ctx, toOllamaChat(req, ctx.upstreamModel, false, settings), droppedParams(req, 'chat'))
      const answer = await readJson<OllamaChatResponse>(res, provider, ctx)
      return readAnswer(provider, () => toChatCompletion(answer, ctx.upstreamModel))
    },
    async chatStream(req, ctx) {
      const res = await call('api/chat', ctx, toOllamaChat(req, ctx.upstreamModel, true, settings), droppedParams(req, 'chat'))
      return toChatChunks(ndjsonLines(res, provider, ctx), provider, ctx.upstreamModel)
    },
    async completion(req, ctx) {
      const res = await call('api/generate', ctx, toOllamaGenerate(req, ctx.upstreamModel, false, settings), droppedParams(req, 'completion'))
      const answer = await readJson<OllamaGenerateResponse>(res, provider, ctx)
      return readAnswer(provider, () => toCompletion(answer, ctx.upstreamModel, echoOf(req)))
    },
    async completionStream(req, ctx) {
      const res = await call('api/generate', ctx, toOllamaGenerate(req, ctx.upstreamModel, true, settings), droppedParams(req, 'completion'))
      return toCompletionChunks(ndjsonLines(res, provider, ctx), provider, ctx.upstreamModel, echoOf(req))
    },
    async embeddings(req, ctx): Promise<EmbeddingResponse> {
      const res = await call('api/embed', ctx, toOllamaEmbed(req, ctx.upstreamModel, settings), droppedParams(req, 'embedding'))
      const body = await readJson<OllamaEmbedResponse>(res, provider, ctx)
      const tokens = body.prompt_eval_count ?? 0
      return readAnswer(provider, () => ({
        object: 'list',
        data: (body.embeddings ?? []).map((vector, index) => ({
          object: 'embedding' as const,
          index,
          embedding: req.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        })),
        model: body.model || ctx.upstreamModel,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      }))
    },
    async listModels(ctx) {
      const res = await call('api/tags', ctx)
      const body = await readJson<OllamaTagsResponse>(res, provider, ctx)
      return (body.models ?? []).map((m) => m.name ?? m.model ?? '').filter(Boolean)
    },
  }
}

/** OpenAI's `echo` puts the prompt before the completion; Ollama cannot, so the adapter does. */
function echoOf(req: { echo?: boolean | null; prompt: unknown }): string {
  return req.echo && typeof req.prompt === 'string' ? req.prompt : req.echo && Array.isArray(req.prompt) && typeof req.prompt[0] === 'string' ? req.prompt[0] : ''
}

/** The body's NDJSON objects, through the one shared reader; read failures become ProxyErrors. */
async function* ndjsonLines(res: UpstreamResponse, provider: string, ctx: CallContext): AsyncGenerator<unknown> {
  try {
    yield* readNdjson(res.body)
  } catch (err) {
    if (err instanceof SyntaxError) throw upstreamBadAnswer(provider, 'a stream line that is not JSON', 'upstream_bad_stream')
    throw upstreamNetworkError(provider, err, ctx.signal)
  } finally {
    // A consumer that stops early (client gone) must not leave the upstream socket streaming.
    res.body.release()
  }
}

/**
 * A model that was never pulled answers 404 `model "x" not found, try pulling it first`; say what to run.
 * Other 404s (a wrong base URL answers "404 page not found") keep the shared mapper's message. Only the
 * message changes: the error keeps its class, status, code and whatever the gateway reads from it.
 */
export function withPullHint(provider: string, model: string, err: unknown): unknown {
  if (!(err instanceof ProxyError) || err.code !== 'upstream_not_found' || !/model ["'][^"']*["'] not found/i.test(err.message)) return err
  err.message = `Provider '${provider}' (Ollama) does not have the model '${model}'. Run 'ollama pull ${model}' on the Ollama host, or route to a model that 'ollama list' shows.`
  return err
}
