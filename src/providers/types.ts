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
  /** the client's own request headers that a native call forwards (e.g. anthropic-version, anthropic-beta) */
  passHeaders?: Record<string, string>
}

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
}

export interface AdapterDeps {
  dispatcher: Dispatcher
}

export type AdapterFactory = (endpoint: ProviderEndpoint, deps: AdapterDeps) => ProviderAdapter
