/** The kinds of provider the proxy can call: the one list (the store's column, the CLI's choices, the adapters' registry). */
export const PROVIDER_TYPES = ['openai', 'openai-compatible', 'anthropic', 'azure', 'ollama', 'mock'] as const
export type ProviderType = (typeof PROVIDER_TYPES)[number]
