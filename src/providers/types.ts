/**
 * The adapter contract. An adapter turns OpenAI-shaped objects into one provider's wire format and back.
 * It takes and gives objects, never SSE text, and knows nothing of routing, key choice or limits.
 * Optional members are capabilities: a provider without embeddings simply has no `embeddings`.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  Completion,
  CompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
} from '../core/openai-schema.js'
import type { Dispatcher } from 'undici'
import type { SignalLike } from '../core/signal-like.js'

import type { ProviderType } from '../core/provider-types.js'

/** What an adapter is built from: one provider's endpoint and settings, never its keys. */
export interface ProviderEndpoint {
  name: string
  type: ProviderType
  baseUrl: string | null
  settings: Record<string, unknown>
}

export interface Timeouts {
  /** time to the upstream's response headers; the call's signal bounds the whole exchange */
  firstByteMs: number
}

export interface CallContext {
  apiKey: string | null
  upstreamModel: string
  /** aborted when the client goes away or the total timeout passes (an AbortSignal will do) */
  signal: SignalLike
  requestId: string
  timeouts: Timeouts
  /**
   * Reports a request parameter the adapter left out because the upstream has no equivalent (e.g.
   * `seed` for Anthropic). The server lists them in the `x-proxy-dropped-params` response header.
   */
  warn?: (param: string) => void
  /**
   * The client's own request headers that a native call forwards (e.g. anthropic-version, anthropic-beta).
   * Credentials and connection headers among them are never forwarded: the adapter sets its own.
   */
  passHeaders?: Record<string, string>
  /** W3C trace context (traceparent, tracestate) for this attempt's span, when traces are on; sent on every upstream request */
  traceHeaders?: Record<string, string>
}

/**
 * One event of a native stream (Anthropic Messages, OpenAI Responses): `type` is the event name. The
 * upstream's data bytes are attached with core/raw-json.ts, so the server relays them byte for byte.
 */
export type NativeEvent = { type: string; [k: string]: unknown }

/** A native request or answer body: the client's own JSON, passed through untranslated. */
export type NativeBody = Record<string, unknown>

export interface ProviderAdapter {
  readonly endpoint: ProviderEndpoint
  chat(req: ChatRequest, ctx: CallContext): Promise<ChatCompletion>
  /**
   * Resolves once the upstream accepted the request (headers received), so the gateway can still retry
   * or fall back; the iterable then yields chunks as they arrive. The last chunk before the end carries
   * `usage` whenever the upstream reports it, whether or not the client asked for it.
   */
  chatStream(req: ChatRequest, ctx: CallContext): Promise<AsyncIterable<ChatCompletionChunk>>
  completion?(req: CompletionRequest, ctx: CallContext): Promise<Completion>
  completionStream?(req: CompletionRequest, ctx: CallContext): Promise<AsyncIterable<Completion>>
  embeddings?(req: EmbeddingRequest, ctx: CallContext): Promise<EmbeddingResponse>
  listModels?(ctx: CallContext): Promise<string[]>

  // Native calls: the body goes through untouched except `model` (= ctx.upstreamModel) and, for streams,
  // `stream: true`. Answers and events carry the upstream's bytes (core/raw-json.ts). Streams resolve once
  // the upstream accepted the request, as chatStream does.

  /** Anthropic Messages (POST /v1/messages): the Message object */
  messages?(body: NativeBody, ctx: CallContext): Promise<NativeBody>
  messagesStream?(body: NativeBody, ctx: CallContext): Promise<AsyncIterable<NativeEvent>>
  /** Anthropic POST /v1/messages/count_tokens */
  countTokens?(body: NativeBody, ctx: CallContext): Promise<{ input_tokens: number }>
  /** OpenAI Responses (POST /v1/responses): the Response object */
  responses?(body: NativeBody, ctx: CallContext): Promise<NativeBody>
  responsesStream?(body: NativeBody, ctx: CallContext): Promise<AsyncIterable<NativeEvent>>
  responseGet?(id: string, ctx: CallContext): Promise<NativeBody>
  responseDelete?(id: string, ctx: CallContext): Promise<NativeBody>
  /** GET /responses/{id}/input_items with the client's query string (with or without its leading '?') */
  responseInputItems?(id: string, query: string, ctx: CallContext): Promise<NativeBody>
}

export interface AdapterDeps {
  dispatcher: Dispatcher
}

export type AdapterFactory = (endpoint: ProviderEndpoint, deps: AdapterDeps) => ProviderAdapter
