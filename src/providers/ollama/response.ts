/**
 * Ollama answers -> OpenAI shapes. Tool-call arguments arrive as objects and leave as JSON text with a
 * synthesized id and a stream index; `done_reason` becomes finish_reason ('tool_calls' whenever the model
 * called a tool, since Ollama says 'stop' then); usage comes from prompt_eval_count / eval_count.
 */
import { ProxyError } from '../../core/errors.js'
import { newCompletionId, randomBase62 } from '../../core/ids.js'
import type { ChatCompletion, ChatCompletionChunk, Completion, FinishReason, ToolCall, ToolCallDelta, Usage } from '../../core/openai-schema.js'
import { answerFault, redactSecrets, upstreamBadAnswer } from '../shared/upstream-error.js'
import type { OllamaChatResponse, OllamaDoneFields, OllamaGenerateResponse, OllamaStreamError, OllamaToolCall } from './wire.js'

export function usageOf(r: OllamaDoneFields): Usage {
  const prompt = r.prompt_eval_count ?? 0
  const completion = r.eval_count ?? 0
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

export function finishReasonOf(doneReason: string | undefined, calledTools: boolean): FinishReason {
  if (calledTools) return 'tool_calls'
  return doneReason === 'length' ? 'length' : 'stop'
}

/** Ollama gives no tool-call ids (recent versions sometimes do); OpenAI clients match results by them. */
export function newToolCallId(): string {
  return `call_${randomBase62(24)}`
}

export function toToolCall(call: OllamaToolCall): ToolCall {
  return { id: call.id || newToolCallId(), type: 'function', function: { name: call.function.name, arguments: argumentsText(call.function.arguments) } }
}

function argumentsText(args: unknown): string {
  return typeof args === 'string' ? args : JSON.stringify(args ?? {})
}

/** Ollama's created_at is RFC 3339 with nanoseconds; OpenAI's `created` is whole seconds. */
export function createdOf(createdAt: string | undefined): number {
  const ms = createdAt ? Date.parse(createdAt) : NaN
  return Math.floor((Number.isNaN(ms) ? Date.now() : ms) / 1000)
}

export function toChatCompletion(r: OllamaChatResponse, fallbackModel: string): ChatCompletion {
  const toolCalls = (r.message?.tool_calls ?? []).map(toToolCall)
  const text = r.message?.content ?? ''
  const message: ChatCompletion['choices'][number]['message'] = {
    role: 'assistant',
    content: text === '' && toolCalls.length > 0 ? null : text,
    refusal: null,
  }
  if (toolCalls.length > 0) message.tool_calls = toolCalls
  if (r.message?.thinking) message.reasoning = r.message.thinking
  return {
    id: newCompletionId('chatcmpl'),
    object: 'chat.completion',
    created: createdOf(r.created_at),
    model: r.model || fallbackModel,
    choices: [{ index: 0, message, finish_reason: finishReasonOf(r.done_reason, toolCalls.length > 0), logprobs: null }],
    usage: usageOf(r),
  }
}

export function toCompletion(r: OllamaGenerateResponse, fallbackModel: string, echo: string): Completion {
  return {
    id: newCompletionId('cmpl'),
    object: 'text_completion',
    created: createdOf(r.created_at),
    model: r.model || fallbackModel,
    choices: [{ index: 0, text: echo + (r.response ?? ''), finish_reason: finishReasonOf(r.done_reason, false), logprobs: null }],
    usage: usageOf(r),
  }
}

/**
 * NDJSON lines of /api/chat as OpenAI chunks: the first carries the role, each line's text and tool calls
 * follow as they come, the final line yields a finish chunk and then a usage chunk (`choices: []`, as
 * OpenAI sends it). A `{"error":…}` line, or a stream that ends before `done`, is an error; so is a line
 * the mapping cannot read (a TypeError on a missing field is the upstream's fault, not the proxy's).
 */
export async function* toChatChunks(lines: AsyncIterable<unknown>, provider: string, fallbackModel: string): AsyncGenerator<ChatCompletionChunk> {
  const id = newCompletionId('chatcmpl')
  let created: number | null = null
  let first = true
  let toolCalls = 0
  try {
    for await (const line of lines) {
      const r = checkLine(line, provider) as OllamaChatResponse
      created ??= createdOf(r.created_at)
      const base = { id, object: 'chat.completion.chunk' as const, created, model: r.model || fallbackModel }
      const delta: ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: string } = {}
      if (first) delta.role = 'assistant'
      const content = r.message?.content ?? ''
      if (content || first) delta.content = content
      if (r.message?.thinking) delta.reasoning = r.message.thinking
      const calls = r.message?.tool_calls ?? []
      if (calls.length > 0) {
        delta.tool_calls = calls.map((c): ToolCallDelta => ({ index: toolCalls++, ...toToolCall(c) }))
      }
      if (Object.keys(delta).length > 0) {
        yield { ...base, choices: [{ index: 0, delta, finish_reason: null, logprobs: null }] }
        first = false
      }
      if (r.done) {
        yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: finishReasonOf(r.done_reason, toolCalls > 0), logprobs: null }] }
        yield { ...base, choices: [], usage: usageOf(r) }
        return
      }
    }
  } catch (err) {
    throw answerFault(provider, err)
  }
  throw truncated(provider)
}

/** NDJSON lines of /api/generate as OpenAI completion chunks, ending the same way as chat. */
export async function* toCompletionChunks(lines: AsyncIterable<unknown>, provider: string, fallbackModel: string, echo: string): AsyncGenerator<Completion> {
  const id = newCompletionId('cmpl')
  let created: number | null = null
  let pending = echo
  try {
    for await (const line of lines) {
      const r = checkLine(line, provider) as OllamaGenerateResponse
      created ??= createdOf(r.created_at)
      const base = { id, object: 'text_completion' as const, created, model: r.model || fallbackModel }
      const text = pending + (r.response ?? '')
      pending = ''
      if (text) yield { ...base, choices: [{ index: 0, text, finish_reason: null, logprobs: null }] }
      if (r.done) {
        yield { ...base, choices: [{ index: 0, text: '', finish_reason: finishReasonOf(r.done_reason, false), logprobs: null }] }
        yield { ...base, choices: [], usage: usageOf(r) }
        return
      }
    }
  } catch (err) {
    throw answerFault(provider, err)
  }
  throw truncated(provider)
}

function checkLine(line: unknown, provider: string): object {
  if (typeof line !== 'object' || line === null) {
    throw upstreamBadAnswer(provider, 'a stream line that is not a JSON object', 'upstream_bad_stream')
  }
  const error = (line as Partial<OllamaStreamError>).error
  if (typeof error === 'string') {
    throw new ProxyError({
      status: 502,
      type: 'upstream_error',
      code: 'upstream_stream_error',
      message: `Provider '${provider}' failed mid-stream: ${redactSecrets(error)}`,
    })
  }
  return line
}

function truncated(provider: string): ProxyError {
  return new ProxyError({
    status: 502,
    type: 'upstream_error',
    code: 'upstream_stream_truncated',
    message: `Provider '${provider}' ended the stream before it was done.`,
    retryable: true,
  })
}
