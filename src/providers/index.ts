import { ProxyError } from '../core/errors.js'
import { createAnthropicAdapter } from './anthropic/index.js'
import { createAzureAdapter } from './azure.js'
import { createMockAdapter } from './mock.js'
import { createOllamaAdapter } from './ollama/index.js'
import { createOpenAIAdapter } from './openai.js'
import type { ProviderType } from '../core/provider-types.js'
import type { AdapterDeps, AdapterFactory, ProviderAdapter, ProviderEndpoint } from './types.js'

interface ProviderKind {
  create: AdapterFactory
  /** callable without a key (a local server, the mock): a provider of this kind needs none configured */
  keyless: boolean
}

/** Every provider type's adapter and capabilities, keyed by the one list in core/provider-types.ts. */
const KINDS: Record<ProviderType, ProviderKind> = {
  openai: { create: createOpenAIAdapter, keyless: false },
  'openai-compatible': { create: createOpenAIAdapter, keyless: true },
  mock: { create: (endpoint) => createMockAdapter(endpoint), keyless: true },
  anthropic: { create: createAnthropicAdapter, keyless: false },
  azure: { create: createAzureAdapter, keyless: false },
  ollama: { create: createOllamaAdapter, keyless: true },
}

/** Whether a provider of this type can be called without a key. */
export function isKeyless(type: ProviderType): boolean {
  return KINDS[type]?.keyless === true
}

export function createAdapter(endpoint: ProviderEndpoint, deps: AdapterDeps): ProviderAdapter {
  const factory = KINDS[endpoint.type]?.create
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
