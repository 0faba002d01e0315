/**
 * OpenAI's own API on the shared lifecycle: chat completions, legacy completions and embeddings. The
 * gateway speaks this shape, so nothing is translated here; answers from OpenAI-format upstreams go
 * out as the upstream's own bytes.
 */
import { chatRequestSchema, completionRequestSchema, embeddingRequestSchema, parseRequest, type ChatRequest, type CompletionRequest, type EmbeddingRequest, type Usage } from '../../core/openai-schema.js'
import { forgetRawJson } from '../../core/raw-json.js'
import type { Gateway } from '../../gateway/gateway.js'
import { estimateChatPromptTokens, estimateChatTokens, estimateCompletionPromptTokens, estimateCompletionTokens, estimateEmbeddingTokens, type CountFn } from '../../limits/estimate.js'
import { normalizeUsage, usageRecord, type Endpoint, type RecordUsage, type StreamMeter } from '../lifecycle.js'
import { StreamedText } from '../streamed-text.js'
import { openAIShape } from './shape.js'

interface WithUsage {
  usage?: Partial<Usage> | null
  choices?: unknown[]
}

const usageOf = (answer: WithUsage): RecordUsage | null => usageRecord(answer.usage)

/**
 * A chat or completion stream: the usage chunk the proxy always asks for (the client sees it only if it
 * asked too), and the text written, for a stream that ends without usage.
 */
class ChatMeter implements StreamMeter<WithUsage> {
  readonly #text = new StreamedText()
  #usage: RecordUsage | null = null

  constructor(readonly wantsUsage: boolean) {}

  see(chunk: WithUsage): boolean {
    this.#text.add(chunk)
    if (chunk.usage) {
      this.#usage = normalizeUsage(chunk.usage)
      if (!this.wantsUsage) {
        if (!chunk.choices || chunk.choices.length === 0) return false
        delete chunk.usage
        forgetRawJson(chunk)
      }
    }
    return true
  }

  usage(): RecordUsage | null {
    return this.#usage
  }

  streamed(count: CountFn): number {
    return this.#text.tokens(count)
  }
}

type Streaming = { model: string; stream?: boolean | null; stream_options?: { include_usage?: boolean } | null }

/** Chat and legacy completions: the same endpoint over a different schema and gateway call. */
function generation<R extends Streaming>(spec: Pick<Endpoint<R, WithUsage, WithUsage>, 'parse' | 'tokens' | 'prompt' | 'maxOutput' | 'call' | 'callStream'>): Endpoint {
  const endpoint: Endpoint<R, WithUsage, WithUsage> = {
    ...spec,
    shape: openAIShape,
    model: (r) => r.model,
    streams: (r) => r.stream === true,
    usage: usageOf,
    meter: (r) => new ChatMeter(r.stream_options?.include_usage === true),
  }
  return endpoint as Endpoint
}

export function chatEndpoints(gateway: Gateway): Array<[string, Endpoint]> {
  const chat = generation<ChatRequest>({
    parse: (body) => parseRequest(chatRequestSchema, body),
    tokens: estimateChatTokens,
    prompt: estimateChatPromptTokens,
    maxOutput: (r) => {
      const max = r.max_completion_tokens ?? r.max_tokens
      return max ? max * (r.n ?? 1) : null
    },
    call: (r, c) => gateway.chat(r, c),
    callStream: (r, c) => gateway.chatStream(r, c),
  })
  const completions = generation<CompletionRequest>({
    parse: (body) => parseRequest(completionRequestSchema, body),
    tokens: estimateCompletionTokens,
    prompt: estimateCompletionPromptTokens,
    // the legacy API's max_tokens defaults to 16
    maxOutput: (r) => (r.max_tokens ?? 16) * (r.n ?? 1),
    call: (r, c) => gateway.completion(r, c),
    callStream: (r, c) => gateway.completionStream(r, c),
  })
  const embeddings: Endpoint<EmbeddingRequest, WithUsage, never> = {
    shape: openAIShape,
    parse: (body) => parseRequest(embeddingRequestSchema, body),
    model: (r) => r.model,
    streams: () => false,
    tokens: estimateEmbeddingTokens,
    maxOutput: () => 0,
    call: (r, c) => gateway.embeddings(r, c),
    usage: usageOf,
  }
  return [
    ['/v1/chat/completions', chat],
    ['/v1/completions', completions],
    ['/v1/embeddings', embeddings as Endpoint],
  ]
}
