/**
 * The built-in mock provider: deterministic replies with configurable latency, chunking, errors and
 * embeddings. It backs `proxy serve --demo` and drives fault tests without any network.
 *
 * With tool_calls on, a request with tools is answered with a call to one of them (mock-answer.ts says
 * which, and with what arguments); a request with a reasoning_effort other than 'none' gets `reasoning`
 * and a signed thinking block first. Streams send reasoning, then the answer, in pieces; usage always.
 *
 * settings: latency_ms (before the answer starts), chunks (stream pieces), chunk_gap_ms, error_rate (0..1),
 * error_status (HTTP status of injected failures), dimensions (embedding size), reply (fixed text),
 * tool_calls (true: call a tool when the request offers tools).
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { newCompletionId } from '../core/ids.js'
import { abortSignalFor } from '../core/signal-like.js'
import type { ChatCompletion, ChatCompletionChunk, ChatRequest, Completion, CompletionRequest, EmbeddingRequest, EmbeddingResponse, Usage } from '../core/openai-schema.js'
import type { ThinkingBlock } from '../core/reasoning.js'
import { contentText, lastUserText, mockThinking, mockToolCall, type MockThinking, type MockToolCall } from './mock-answer.js'
import { upstreamHttpError, upstreamNetworkError } from './shared/upstream-error.js'
import type { CallContext, ProviderAdapter, ProviderEndpoint } from './types.js'

interface MockSettings {
  latencyMs: number
  chunks: number
  chunkGapMs: number
  errorRate: number
  errorStatus: number
  dimensions: number
  reply: string | null
  toolCalls: boolean
}

/** A chunk's delta with the gateway's reasoning extensions (core/reasoning.ts). */
type Delta = ChatCompletionChunk['choices'][number]['delta'] & { reasoning?: string; thinking_blocks?: ThinkingBlock[] }

/** What a chat request gets: a tool call or text, with thinking first when asked. */
interface ChatAnswer {
  text: string | null
  call: MockToolCall | null
  thinking: MockThinking | null
  usage: Usage
}

export function readMockSettings(settings: Record<string, unknown>): MockSettings {
  const num = (key: string, fallback: number) => (typeof settings[key] === 'number' ? (settings[key] as number) : fallback)
  return {
    latencyMs: num('latency_ms', 0),
    chunks: Math.max(1, Math.floor(num('chunks', 8))),
    chunkGapMs: num('chunk_gap_ms', 0),
    errorRate: num('error_rate', 0),
    errorStatus: num('error_status', 500),
    dimensions: Math.max(1, Math.floor(num('dimensions', 16))),
    reply: typeof settings.reply === 'string' ? settings.reply : null,
    toolCalls: settings.tool_calls === true,
  }
}

export function createMockAdapter(endpoint: ProviderEndpoint): ProviderAdapter {
  const s = readMockSettings(endpoint.settings)

  const begin = async (ctx: CallContext) => {
    if (s.latencyMs > 0) await wait(s.latencyMs, endpoint.name, ctx)
    if (s.errorRate > 0 && Math.random() < s.errorRate) {
      throw upstreamHttpError(endpoint.name, s.errorStatus, { message: `mock provider injected a ${s.errorStatus} failure` })
    }
  }

  const replyTo = (prompt: string, model: string) => s.reply ?? `Mock reply from ${model}: you said "${prompt.slice(0, 200)}".`

  const answer = (req: ChatRequest, model: string): ChatAnswer => {
    const prompt = lastUserText(req.messages)
    const call = s.toolCalls ? mockToolCall(req) : null
    const thinking = mockThinking(req, prompt, call)
    const text = call ? null : replyTo(prompt, model)
    const reasoningTokens = countTokens(thinking?.text ?? '')
    const u = usage(promptTokens(req), countTokens(text ?? call!.arguments) + reasoningTokens)
    if (thinking) u.completion_tokens_details = { reasoning_tokens: reasoningTokens }
    return { text, call, thinking, usage: u }
  }

  return {
    endpoint,
    async chat(req, ctx) {
      await begin(ctx)
      const a = answer(req, ctx.upstreamModel)
      const message: ChatCompletion['choices'][number]['message'] = { role: 'assistant', content: a.text, refusal: null }
      if (a.call) message.tool_calls = [{ id: a.call.id, type: 'function', function: { name: a.call.name, arguments: a.call.arguments } }]
      if (a.thinking) Object.assign(message, { reasoning: a.thinking.text, thinking_blocks: [a.thinking.block] })
      const completion: ChatCompletion = {
        id: newCompletionId('chatcmpl'),
        object: 'chat.completion',
        created: nowSeconds(),
        model: ctx.upstreamModel,
        choices: [{ index: 0, message, finish_reason: a.call ? 'tool_calls' : 'stop', logprobs: null }],
        usage: a.usage,
      }
      return completion
    },
    async chatStream(req, ctx) {
      await begin(ctx)
      const a = answer(req, ctx.upstreamModel)
      const id = newCompletionId('chatcmpl')
      const created = nowSeconds()
      const base = { id, object: 'chat.completion.chunk' as const, created, model: ctx.upstreamModel }
      const name = endpoint.name
      const chunk = (delta: Delta, finish_reason: 'stop' | 'tool_calls' | null = null): ChatCompletionChunk => ({ ...base, choices: [{ index: 0, delta, finish_reason, logprobs: null }] })
      // every delta after the first, reasoning first, then the tool call (its arguments in pieces) or the text
      const deltas: Delta[] = []
      if (a.thinking) {
        for (const piece of splitInto(a.thinking.text, s.chunks)) deltas.push({ reasoning: piece })
        deltas.push({ thinking_blocks: [{ ...a.thinking.block, thinking: '' }] })
      }
      if (a.call) {
        deltas.push({ tool_calls: [{ index: 0, id: a.call.id, type: 'function', function: { name: a.call.name, arguments: '' } }] })
        for (const piece of splitInto(a.call.arguments, Math.max(3, s.chunks))) deltas.push({ tool_calls: [{ index: 0, function: { arguments: piece } }] })
      } else {
        for (const piece of splitInto(a.text ?? '', s.chunks)) deltas.push({ content: piece })
      }
      return (async function* (): AsyncGenerator<ChatCompletionChunk> {
        yield chunk({ role: 'assistant', content: '' })
        for (const [i, delta] of deltas.entries()) {
          if (i > 0 && s.chunkGapMs > 0) await wait(s.chunkGapMs, name, ctx)
          yield chunk(delta)
        }
        yield chunk({}, a.call ? 'tool_calls' : 'stop')
        yield { ...base, choices: [], usage: a.usage }
      })()
    },
    async completion(req, ctx) {
      await begin(ctx)
      const text = replyTo(promptText(req), ctx.upstreamModel)
      return completionObject(newCompletionId('cmpl'), ctx.upstreamModel, text, 'stop', usage(countTokens(promptText(req)), countTokens(text)))
    },
    async completionStream(req, ctx) {
      await begin(ctx)
      const text = replyTo(promptText(req), ctx.upstreamModel)
      const id = newCompletionId('cmpl')
      const name = endpoint.name
      return (async function* (): AsyncGenerator<Completion> {
        for (const [i, piece] of splitInto(text, s.chunks).entries()) {
          if (i > 0 && s.chunkGapMs > 0) await wait(s.chunkGapMs, name, ctx)
          yield completionObject(id, ctx.upstreamModel, piece, null)
        }
        yield completionObject(id, ctx.upstreamModel, '', 'stop')
        yield { ...completionObject(id, ctx.upstreamModel, '', null), choices: [], usage: usage(countTokens(promptText(req)), countTokens(text)) }
      })()
    },
    async embeddings(req: EmbeddingRequest, ctx): Promise<EmbeddingResponse> {
      await begin(ctx)
      const inputs = normalizeInputs(req.input)
      const dims = req.dimensions ?? s.dimensions
      const data = inputs.map((text, index) => {
        const vector = embed(text, dims)
        return {
          object: 'embedding' as const,
          index,
          embedding: req.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        }
      })
      const tokens = inputs.reduce((n, t) => n + countTokens(t), 0)
      return { object: 'list', data, model: ctx.upstreamModel, usage: { prompt_tokens: tokens, total_tokens: tokens } }
    },
    async listModels() {
      return ['mock-model']
    },
  }
}

/**
 * Waits at least `ms` of real time. A timer counts from the event loop's cached clock, which lags while
 * an iteration runs long (a busy server), so one timer alone can end a few milliseconds early.
 */
async function wait(ms: number, provider: string, ctx: CallContext): Promise<void> {
  const wake = abortSignalFor(ctx.signal)
  const until = performance.now() + ms
  try {
    for (let left = ms; left > 0; left = until - performance.now()) await sleep(Math.ceil(left), undefined, { signal: wake.signal })
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  } finally {
    wake.unlink()
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

function completionObject(id: string, model: string, text: string, finish: 'stop' | null, u?: Usage): Completion {
  return {
    id,
    object: 'text_completion',
    created: nowSeconds(),
    model,
    choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
    ...(u ? { usage: u } : {}),
  }
}

function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

function promptTokens(req: ChatRequest): number {
  return req.messages.reduce((n, m) => n + 4 + countTokens(contentText(m.content)), 0)
}

function promptText(req: CompletionRequest): string {
  return typeof req.prompt === 'string' ? req.prompt : req.prompt.map((p) => (typeof p === 'string' ? p : Array.isArray(p) ? p.join(' ') : String(p))).join('\n')
}

function normalizeInputs(input: EmbeddingRequest['input']): string[] {
  if (typeof input === 'string') return [input]
  if (input.length > 0 && typeof input[0] === 'number') return [(input as number[]).join(' ')]
  return (input as Array<string | number[]>).map((i) => (typeof i === 'string' ? i : i.join(' ')))
}

/** About four characters a token, as OpenAI's rule of thumb; the mock only needs stable, plausible counts. */
export function countTokens(text: string): number {
  return text ? Math.max(1, Math.ceil(text.length / 4)) : 0
}

function splitInto(text: string, parts: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / parts))
  const out: string[] = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out.length ? out : ['']
}

/** A unit vector derived from the text's hash: equal texts embed equally, different texts differ. */
function embed(text: string, dims: number): number[] {
  const out: number[] = []
  let block = createHash('sha256').update(text).digest()
  while (out.length < dims) {
    for (let i = 0; i + 1 < block.length && out.length < dims; i += 2) out.push(block.readUInt16BE(i) / 32767.5 - 1)
    block = createHash('sha256').update(block).digest()
  }
  const norm = Math.hypot(...out) || 1
  return out.map((v) => Number((v / norm).toFixed(6)))
}
