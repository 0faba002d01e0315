/**
 * The parts of Ollama's native API (github.com/ollama/ollama docs/api.md) this adapter writes and reads:
 * /api/chat, /api/generate, /api/embed and /api/tags. Response shapes are partial on purpose; fields not
 * named here are ignored.
 */

export interface OllamaToolCall {
  id?: string
  function: { index?: number; name: string; arguments: Record<string, unknown> }
}

export interface OllamaMessage {
  role: 'system' | 'user' | 'assistant' | 'tool'
  content: string
  /** base64 without a data: prefix */
  images?: string[]
  tool_calls?: OllamaToolCall[]
  /** on role 'tool': which function produced this result */
  tool_name?: string
  thinking?: string
}

export interface OllamaTool {
  type: 'function'
  function: { name: string; description?: string; parameters?: Record<string, unknown> }
}

/** Model parameters (Modelfile PARAMETER names); anything else an operator sets passes through. */
export type OllamaOptions = Record<string, unknown>

export interface OllamaChatRequest {
  model: string
  messages: OllamaMessage[]
  /** Ollama streams unless told otherwise, so this is always sent */
  stream: boolean
  tools?: OllamaTool[]
  /** 'json' or a JSON schema */
  format?: 'json' | Record<string, unknown>
  options?: OllamaOptions
  keep_alive?: string | number
  think?: boolean | 'low' | 'medium' | 'high'
}

export interface OllamaGenerateRequest {
  model: string
  prompt: string
  suffix?: string
  stream: boolean
  options?: OllamaOptions
  keep_alive?: string | number
}

/** What /api/chat and /api/generate report once `done` is true. */
export interface OllamaDoneFields {
  done: boolean
  done_reason?: string
  total_duration?: number
  prompt_eval_count?: number
  eval_count?: number
}

export interface OllamaChatResponse extends OllamaDoneFields {
  model?: string
  created_at?: string
  message?: { role?: string; content?: string; thinking?: string; tool_calls?: OllamaToolCall[] }
}

export interface OllamaGenerateResponse extends OllamaDoneFields {
  model?: string
  created_at?: string
  response?: string
}

/** A line of a stream that failed after it started. */
export interface OllamaStreamError {
  error: string
}

export interface OllamaEmbedRequest {
  model: string
  input: string | string[]
  truncate?: boolean
  dimensions?: number
  options?: OllamaOptions
  keep_alive?: string | number
}

export interface OllamaEmbedResponse {
  model?: string
  embeddings: number[][]
  prompt_eval_count?: number
}

export interface OllamaTagsResponse {
  models?: Array<{ name?: string; model?: string }>
}
