/**
 * The parts of Anthropic's Messages API wire format (https://docs.anthropic.com/en/api/messages) this
 * adapter writes and reads. Response shapes are deliberately partial: Anthropic adds fields and block
 * types over time, and anything not named here is ignored rather than rejected.
 */

export interface TextBlock {
  type: 'text'
  text: string
  cache_control?: unknown
}

export type MediaSource = { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string }

export interface ImageBlock {
  type: 'image'
  source: MediaSource
  cache_control?: unknown
}

export interface DocumentBlock {
  type: 'document'
  source: MediaSource
  cache_control?: unknown
}

export interface ToolUseBlock {
  type: 'tool_use'
  id: string
  name: string
  input: Record<string, unknown>
}

export interface ToolResultBlock {
  type: 'tool_result'
  tool_use_id: string
  content?: string | Array<TextBlock | ImageBlock | DocumentBlock>
  cache_control?: unknown
}

/** Thinking from an earlier answer, sent back unchanged (the signature proves it is Anthropic's own). */
export type ThinkingBlockParam = { type: 'thinking'; thinking: string; signature: string } | { type: 'redacted_thinking'; data: string }

export type ContentBlock = TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | ThinkingBlockParam

export interface MessageParam {
  role: 'user' | 'assistant'
  content: ContentBlock[]
}

export interface ToolParam {
  name: string
  description?: string
  input_schema: Record<string, unknown>
}

export type ToolChoiceParam =
  | { type: 'auto' | 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' }

export interface MessagesRequest {
  model: string
  messages: MessageParam[]
  max_tokens: number
  system?: string | TextBlock[]
  stop_sequences?: string[]
  temperature?: number
  top_p?: number
  tools?: ToolParam[]
  tool_choice?: ToolChoiceParam
  metadata?: { user_id: string }
  thinking?: { type: 'enabled'; budget_tokens: number }
  stream?: boolean
}

export interface Usage {
  input_tokens?: number | null
  output_tokens?: number | null
  cache_read_input_tokens?: number | null
  cache_creation_input_tokens?: number | null
}

/** A response content block: text, tool_use, thinking and redacted_thinking are read; server tools and the like are skipped. */
export interface ResponseBlock {
  type: string
  text?: string
  id?: string
  name?: string
  input?: unknown
  thinking?: string
  signature?: string
  data?: string
}

export interface MessageResponse {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: ResponseBlock[]
  stop_reason: string | null
  stop_sequence?: string | null
  usage: Usage
}

export interface ErrorDetail {
  type?: string
  message?: string
}

/** Server-sent events of a streamed message; `data.type` names the event (and equals the SSE `event:` line). */
export type StreamEvent =
  | { type: 'message_start'; message: Partial<MessageResponse> }
  | { type: 'content_block_start'; index: number; content_block: ResponseBlock }
  /** delta types read: text_delta (text), input_json_delta (partial_json), thinking_delta, signature_delta; citation deltas are skipped */
  | { type: 'content_block_delta'; index: number; delta: { type: string; text?: string; partial_json?: string; thinking?: string; signature?: string } }
  | { type: 'content_block_stop'; index: number }
  | { type: 'message_delta'; delta: { stop_reason?: string | null; stop_sequence?: string | null }; usage?: Usage }
  | { type: 'message_stop' }
  | { type: 'ping' }
  | { type: 'error'; error: ErrorDetail }
