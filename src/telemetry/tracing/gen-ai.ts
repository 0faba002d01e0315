/**
 * The GenAI semantic conventions' names (opentelemetry.io/docs/specs/semconv/gen-ai), and the proxy's own
 * attributes beside them. The GenAI names are written out here rather than imported: the semantic
 * conventions package marks them experimental and moved (to open-telemetry/semantic-conventions-genai),
 * and its incubating entry point is a large module to load for a dozen strings.
 */
import type { ProviderType } from '../../core/provider-types.js'

export const GEN_AI = {
  operation: 'gen_ai.operation.name',
  provider: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  requestStream: 'gen_ai.request.stream',
  responseModel: 'gen_ai.response.model',
  responseId: 'gen_ai.response.id',
  finishReasons: 'gen_ai.response.finish_reasons',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
} as const

/** The proxy's own attributes: never a secret (a key's label, not the key; a client's name, not its key). */
export const PROXY = {
  requestId: 'proxy.request_id',
  client: 'proxy.client',
  provider: 'proxy.provider',
  upstreamModel: 'proxy.upstream_model',
  keyLabel: 'proxy.key_label',
  attempts: 'proxy.attempts',
  fallback: 'proxy.fallback',
  costUsd: 'proxy.cost_usd',
  usageEstimated: 'proxy.usage_estimated',
  waitMs: 'proxy.wait_ms',
  failure: 'proxy.failure_reason',
  errorStatus: 'proxy.error.status',
  requestBody: 'proxy.request.body',
  responseBody: 'proxy.response.body',
} as const

/** The span events on the request span. */
export const EVENTS = { firstByte: 'proxy.first_byte' } as const

/** gen_ai.operation.name for each endpoint the lifecycle serves. */
export function operationFor(path: string): string {
  switch (path) {
    case '/v1/completions':
      return 'text_completion'
    case '/v1/embeddings':
      return 'embeddings'
    default:
      // chat completions, the Responses API and Anthropic's Messages are all chat in the conventions
      return 'chat'
  }
}

/**
 * gen_ai.provider.name for a provider type: the conventions' well-known value where there is one. An
 * OpenAI-compatible provider speaks OpenAI's API, whoever runs it; the configured name is in proxy.provider.
 */
export function providerName(type: ProviderType | undefined): string {
  switch (type) {
    case 'openai':
    case 'openai-compatible':
      return 'openai'
    case 'azure':
      return 'azure.ai.openai'
    case undefined:
      return 'unknown'
    default:
      return type
  }
}
