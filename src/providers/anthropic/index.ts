/**
 * Anthropic's Messages API (POST {base}/v1/messages). Chat and legacy completions are translated both ways;
 * there is no `embeddings` member, because Anthropic has no embeddings endpoint, so the gateway answers
 * such requests with a 400 naming the provider.
 *
 * Anthropic's own Messages API is also called natively (messages, messagesStream, countTokens): the body
 * passes untouched but for `model`; the client's anthropic-version wins over the provider's, and its
 * anthropic-beta list is merged with the provider's.
 *
 * settings: anthropic_version (header, default 2023-06-01), default_max_tokens (used when the client sends
 * no max_tokens, which Anthropic requires; default 4096), headers (object: extra upstream headers, e.g.
 * anthropic-beta).
 */
import type { Completion, ChatCompletionChunk } from '../../core/openai-schema.js'
import { revised } from '../../core/request-bytes.js'
import { stringRecord } from '../openai.js'
import { callUpstream, fetchJson, joinUrl, type UpstreamResponse } from '../shared/http.js'
import { nativeEvents, type NativeStreamRules } from '../shared/native-stream.js'
import { forwardedHeaders, lowerKeys, mergeTokenLists } from '../shared/pass-headers.js'
import type { AdapterDeps, CallContext, NativeBody, ProviderAdapter, ProviderEndpoint } from '../types.js'
import { readAnswer } from '../shared/upstream-error.js'
import { completionToMessagesRequest, toMessagesRequest, type MappingOptions } from './request.js'
import { streamError, toChatCompletion, toCompletion } from './response.js'
import { readEvents, toChatChunks, toCompletionChunks } from './stream.js'
import type { ErrorDetail, MessageResponse, MessagesRequest } from './wire.js'

export const ANTHROPIC_BASE_URL = 'https://api.anthropic.com'
export const ANTHROPIC_VERSION = '2023-06-01'
export const DEFAULT_MAX_TOKENS = 4096

export function createAnthropicAdapter(endpoint: ProviderEndpoint, deps: AdapterDeps): ProviderAdapter {
  const s = endpoint.settings
  // The SDKs take the origin as base URL; a base that already ends in /v1 is accepted too.
  const base = (endpoint.baseUrl ?? ANTHROPIC_BASE_URL).replace(/\/+$/, '').replace(/\/v1$/, '')
  const urls = { messages: joinUrl(base, 'v1/messages'), countTokens: joinUrl(base, 'v1/messages/count_tokens'), models: joinUrl(base, 'v1/models?limit=1000') }
  const version = typeof s.anthropic_version === 'string' && s.anthropic_version ? s.anthropic_version : ANTHROPIC_VERSION
  const defaultMaxTokens = typeof s.default_max_tokens === 'number' && s.default_max_tokens >= 1 ? Math.floor(s.default_max_tokens) : DEFAULT_MAX_TOKENS
  const extraHeaders = lowerKeys(stringRecord(s.headers))
  const name = endpoint.name

  const headersFor = (ctx: CallContext): Record<string, string> => {
    const h: Record<string, string> = { ...extraHeaders, 'anthropic-version': version }
    if (ctx.apiKey) h['x-api-key'] = ctx.apiKey
    return h
  }
  // The operator's headers win over the client's, except anthropic-version (the client knows the shape it
  // speaks) and anthropic-beta (both lists are sent: the client's features and the operator's).
  const nativeHeadersFor = (ctx: CallContext): Record<string, string> => {
    const pass = forwardedHeaders(ctx.passHeaders)
    const h: Record<string, string> = { ...pass, ...extraHeaders, 'anthropic-version': pass['anthropic-version'] || version }
    const beta = mergeTokenLists(pass['anthropic-beta'], extraHeaders['anthropic-beta'])
    if (beta) h['anthropic-beta'] = beta
    if (ctx.apiKey) h['x-api-key'] = ctx.apiKey
    return h
  }
  const nativeJson = <T>(url: string, body: NativeBody, ctx: CallContext) =>
    fetchJson<T>({ dispatcher: deps.dispatcher, provider: name, url, headers: nativeHeadersFor(ctx), body, ctx, keepRaw: true })
  const streamRules: NativeStreamRules = {
    errorOf: (event) => (event.type === 'error' ? streamError(name, event.error as ErrorDetail | undefined) : null),
    terminal: new Set(['message_stop']),
  }
  const mapping = (ctx: CallContext): MappingOptions => ({ provider: name, model: ctx.upstreamModel, defaultMaxTokens, warn: ctx.warn ?? (() => {}) })
  const post = (body: MessagesRequest, ctx: CallContext) =>
    callUpstream({ dispatcher: deps.dispatcher, provider: name, url: urls.messages, headers: headersFor(ctx), body, ctx })

  const messages = (body: MessagesRequest, ctx: CallContext) => fetchJson<MessageResponse>({ dispatcher: deps.dispatcher, provider: name, url: urls.messages, headers: headersFor(ctx), body, ctx })
  const chunks = async (body: MessagesRequest, ctx: CallContext): Promise<AsyncIterable<ChatCompletionChunk>> => {
    const res: UpstreamResponse = await post({ ...body, stream: true }, ctx)
    return toChatChunks(readEvents(res, name, ctx), name, ctx.upstreamModel)
  }

  return {
    endpoint,
    async chat(req, ctx) {
      const answer = await messages(toMessagesRequest(req, mapping(ctx)), ctx)
      return readAnswer(name, () => toChatCompletion(answer, ctx.upstreamModel))
    },
    async chatStream(req, ctx) {
      return chunks(toMessagesRequest(req, mapping(ctx)), ctx)
    },
    async completion(req, ctx) {
      const answer = await messages(completionToMessagesRequest(req, mapping(ctx)), ctx)
      return readAnswer(name, () => toCompletion(answer, ctx.upstreamModel))
    },
    async completionStream(req, ctx): Promise<AsyncIterable<Completion>> {
      return toCompletionChunks(await chunks(completionToMessagesRequest(req, mapping(ctx)), ctx))
    },
    async messages(body, ctx) {
      return nativeJson<NativeBody>(urls.messages, revised(body, { model: ctx.upstreamModel, ...(body.stream ? { stream: false } : {}) }), ctx)
    },
    async messagesStream(body, ctx) {
      const res = await callUpstream({ dispatcher: deps.dispatcher, provider: name, url: urls.messages, headers: nativeHeadersFor(ctx), body: revised(body, { model: ctx.upstreamModel, stream: true }), ctx })
      return nativeEvents(res, name, ctx, streamRules)
    },
    async countTokens(body, ctx) {
      return nativeJson<{ input_tokens: number }>(urls.countTokens, revised(body, { model: ctx.upstreamModel }), ctx)
    },
    async listModels(ctx) {
      const body = await fetchJson<{ data?: Array<{ id: string }> }>({ dispatcher: deps.dispatcher, provider: name, url: urls.models, headers: headersFor(ctx), method: 'GET', ctx })
      return (body.data ?? []).map((m) => m.id)
    },
  }
}
