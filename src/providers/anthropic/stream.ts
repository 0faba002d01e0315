/**
 * Anthropic's streamed message (message_start, content_block_start/delta/stop, message_delta, message_stop,
 * ping, error) as OpenAI chunks. All per-stream state lives inside the generators.
 */
import type { UpstreamResponse } from '../shared/http.js'
import { ProxyError } from '../../core/errors.js'
import type { ChatCompletionChunk, Completion, FinishReason } from '../../core/openai-schema.js'
import type { ThinkingBlock } from '../../core/reasoning.js'
import { streamTruncated } from '../shared/native-stream.js'
import { readSse } from '../shared/stream-readers.js'
import { answerFault, upstreamBadAnswer, upstreamNetworkError } from '../shared/upstream-error.js'
import type { CallContext } from '../types.js'
import { completionId, finishReason, nowSeconds, streamError, thinkingBlock, toUsage } from './response.js'
import type { ErrorDetail, StreamEvent, Usage } from './wire.js'

/** The upstream's SSE body as parsed events; an `error` event becomes a thrown ProxyError. */
export async function* readEvents(res: UpstreamResponse, provider: string, ctx: CallContext): AsyncGenerator<StreamEvent> {
  try {
    for await (const sse of readSse(res.body)) {
      let event: StreamEvent
      try {
        event = JSON.parse(sse.data) as StreamEvent
      } catch {
        throw upstreamBadAnswer(provider, 'a stream event that is not JSON', 'upstream_bad_stream')
      }
      if (event.type === 'error' || sse.event === 'error') throw streamError(provider, (event as { error?: ErrorDetail }).error)
      yield event
    }
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  } finally {
    // A consumer that stops early (client gone) must not leave the upstream socket streaming.
    res.body.release()
  }
}

/** A chunk's delta with the gateway's reasoning extensions (core/reasoning.ts). */
type Delta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: string; thinking_blocks?: ThinkingBlock[] }

/**
 * Chunks as OpenAI streams them: a first chunk with the role, content and tool-call deltas, a chunk with
 * finish_reason, then always one usage chunk (`choices: []`); the server drops it when the client did not
 * ask. Tool calls are numbered 0, 1, … in the order their tool_use blocks start, whatever Anthropic's
 * block index (a text block usually comes first).
 *
 * Thinking streams as `reasoning` deltas; its signature (signature_delta) is collected, and when the block
 * stops one delta carries the block with its signature and an empty `thinking` (the text went out already).
 * A redacted_thinking block arrives whole and leaves the same way at its stop.
 */
export async function* toChatChunks(events: AsyncIterable<StreamEvent>, provider: string, fallbackModel: string): AsyncGenerator<ChatCompletionChunk> {
  let id = completionId('chatcmpl', undefined)
  let model = fallbackModel
  const created = nowSeconds()
  const usage: Usage = {}
  let finish: FinishReason | null = null
  let started = false
  const toolIndex = new Map<number, number>()
  /** tool calls (by our index) whose arguments have begun */
  const withArguments = new Set<number>()
  const thinking = new Map<number, ThinkingBlock>()
  const chunk = (delta: Delta, finish_reason: FinishReason | null = null): ChatCompletionChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason, logprobs: null }],
  })

  try {
    for await (const event of events) {
      if (event.type === 'message_start') {
        id = completionId('chatcmpl', event.message.id)
        model = event.message.model ?? model
        mergeUsage(usage, event.message.usage)
      }
      if (!started && event.type !== 'ping') {
        started = true
        yield chunk({ role: 'assistant', content: '' })
      }
      switch (event.type) {
        case 'content_block_start': {
          const block = event.content_block
          if (block.type === 'text' && block.text) yield chunk({ content: block.text })
          const t = thinkingBlock(block)
          if (t) {
            thinking.set(event.index, t.type === 'thinking' ? { ...t, thinking: '' } : t)
            if (t.type === 'thinking' && t.thinking) yield chunk({ reasoning: t.thinking })
          }
          if (block.type === 'tool_use') {
            const index = toolIndex.size
            toolIndex.set(event.index, index)
            yield chunk({ tool_calls: [{ index, id: block.id ?? `call_${index}`, type: 'function', function: { name: block.name ?? '', arguments: '' } }] })
            // Anthropic streams the input as input_json_delta fragments after an empty `input: {}`; an input
            // that arrives whole (some compatible servers do this) is sent as one fragment.
            if (block.input && typeof block.input === 'object' && Object.keys(block.input).length > 0) {
              withArguments.add(index)
              yield chunk({ tool_calls: [{ index, function: { arguments: JSON.stringify(block.input) } }] })
            }
          }
          break
        }
        case 'content_block_delta': {
          const delta = event.delta
          if (delta.type === 'text_delta' && delta.text) yield chunk({ content: delta.text })
          if (delta.type === 'thinking_delta' && delta.thinking) yield chunk({ reasoning: delta.thinking })
          const open = thinking.get(event.index)
          if (delta.type === 'signature_delta' && open?.type === 'thinking') open.signature += delta.signature ?? ''
          const index = toolIndex.get(event.index)
          if (delta.type === 'input_json_delta' && delta.partial_json && index !== undefined) {
            withArguments.add(index)
            yield chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] })
          }
          break
        }
        case 'content_block_stop': {
          const done = thinking.get(event.index)
          if (done) {
            thinking.delete(event.index)
            yield chunk({ thinking_blocks: [done] })
          }
          // A call to a tool without parameters streams no input at all (one empty partial_json): its
          // arguments are `{}`, as OpenAI sends them and as the non-streamed answer says.
          const call = toolIndex.get(event.index)
          if (call !== undefined && !withArguments.has(call)) {
            withArguments.add(call)
            yield chunk({ tool_calls: [{ index: call, function: { arguments: '{}' } }] })
          }
          break
        }
        case 'message_delta':
          if (event.delta.stop_reason) finish = finishReason(event.delta.stop_reason)
          mergeUsage(usage, event.usage)
          break
        case 'message_stop':
          yield chunk({}, finish ?? 'stop')
          yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage: toUsage(usage) }
          return
        default:
          // ping and citation deltas carry nothing for an OpenAI client
          break
      }
    }
  } catch (err) {
    // an event without what its type promises (no `message`, no `delta`) is the upstream's fault
    throw answerFault(provider, err)
  }
  // Ending without message_stop means the answer was cut off: say so instead of ending the stream as if complete.
  throw streamTruncated(provider)
}

/** Legacy completions reuse the chat mapping: text deltas become `text`, the usage chunk stays a usage chunk. */
export async function* toCompletionChunks(chunks: AsyncIterable<ChatCompletionChunk>): AsyncGenerator<Completion> {
  for await (const c of chunks) {
    const base = { id: c.id.replace(/^chatcmpl-/, 'cmpl-'), object: 'text_completion' as const, created: c.created, model: c.model }
    if (c.usage) {
      yield { ...base, choices: [], usage: c.usage }
      continue
    }
    const choice = c.choices[0]
    const text = choice?.delta.content ?? ''
    if (!choice || (text === '' && choice.finish_reason === null)) continue
    yield { ...base, choices: [{ index: 0, text, finish_reason: choice.finish_reason, logprobs: null }] }
  }
}

/** message_start carries the input counts; message_delta the (cumulative) output count and, lately, updated input counts. */
function mergeUsage(into: Usage, from: Usage | undefined): void {
  if (!from) return
  for (const key of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const) {
    const value = from[key]
    if (typeof value === 'number') into[key] = value
  }
}
