import { ProxyError } from '../core/errors.js'
import { createAnthropicAdapter } from './anthropic/index.js'
import { createAzureAdapter } from './azure.js'
import { createMockAdapter } from './mock.js'
import { createOllamaAdapter } from './ollama/index.js'
import { createOpenAIAdapter } from './openai.js'
import type { AdapterDeps, AdapterFactory, ProviderAdapter, ProviderEndpoint, ProviderKind } from './types.js'

const FACTORIES: Partial<Record<ProviderKind, AdapterFactory>> = {
  openai: createOpenAIAdapter,
  'openai-compatible': createOpenAIAdapter,
  mock: (endpoint) => createMockAdapter(endpoint),
  anthropic: createAnthropicAdapter,
  azure: createAzureAdapter,
  ollama: createOllamaAdapter,
}

export function createAdapter(endpoint: ProviderEndpoint, deps: AdapterDeps): ProviderAdapter {
  const factory = FACTORIES[endpoint.type]
  if (!factory) {
    throw new ProxyError({
      status: 501,
      type: 'server_error',
      code: 'provider_type_unsupported',
      message: `Provider '${endpoint.name}' has type '${endpoint.type}', which this version of proxy cannot call yet.`,
    })
  }
  return factory(endpoint, deps)
}

export type { ProviderAdapter, ProviderEndpoint, CallContext } from './types.js'
