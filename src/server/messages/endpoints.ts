/**
 * Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) on the shared lifecycle. An
 * Anthropic target is called natively, the body untouched but for the model; any other target gets the
 * request translated to chat completions and the answer translated back (request.ts, response.ts,
 * stream.ts). One request may fall back from one kind of target to the other.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { ProxyError } from '../../core/errors.js'
import { parseCountTokensRequest, parseMessagesRequest, type CountTokensRequest, type MessagesRequest } from '../../core/messages-schema.js'
import type { Gateway, Served } from '../../gateway/gateway.js'
import { primeStream } from '../../gateway/streams.js'
import type { CountFn } from '../../limits/estimate.js'
import type { NativeEvent, ProviderAdapter } from '../../providers/types.js'
import { usageRecord, type Endpoint, type RecordUsage, type StreamMeter } from '../lifecycle.js'
import { StreamedText } from '../streamed-text.js'
import { estimateMessagesTokens } from './count-tokens.js'
import { toChatRequest, type TranslatedRequest } from './request.js'
import { toMessage } from './response.js'
import { toMessageEvents } from './stream.js'
import { messageUsage, StreamUsage } from './usage.js'
import { COUNT_TOKENS_PATH, MESSAGES_PATH, messagesShape } from './shape.js'

/** The Anthropic headers a native call forwards; the adapter merges anthropic-beta with its own. */
function anthropicHeaders(h: IncomingHttpHeaders): Record<string, string> | undefined {
  const version = h['anthropic-version']
  const beta = h['anthropic-beta']
  if (version === undefined && beta === undefined) return undefined
  const out: Record<string, string> = {}
  if (typeof version === 'string') out['anthropic-version'] = version
  if (beta !== undefined) out['anthropic-beta'] = Array.isArray(beta) ? beta.join(',') : beta
  return out
}

/** The translation for chat targets, made once per request (at its first translated attempt). */
function translation(req: MessagesRequest): () => TranslatedRequest {
  let made: TranslatedRequest | null = null
  return () => (made ??= toChatRequest(req))
}


/** A stream's usage (message_start, message_delta) and the text it carried. */
class MessagesMeter implements StreamMeter<NativeEvent> {
  readonly #usage = new StreamUsage()
  readonly #text = new StreamedText()
  #final = false

  see(event: NativeEvent): boolean {
    if (event.type === 'content_block_delta') {
      const d = event.delta as { text?: string; thinking?: string; partial_json?: string } | undefined
      const piece = d?.text ?? d?.thinking ?? d?.partial_json
      if (piece) this.#text.keep(piece)
    } else if (event.type === 'message_start' || event.type === 'message_delta') {
      this.#usage.observe(event)
      if (event.type === 'message_delta') this.#final = true
    }
    return true
  }

  /** Only a stream that reached message_delta reported its output: one cut before is counted instead. */
  usage(): RecordUsage | null {
    return this.#final ? usageRecord(this.#usage.usage) : null
  }

  streamed(count: CountFn): number {
    return this.#text.tokens(count)
  }
}

/** `counter`: the limiter's token counter, for count_tokens estimates. */
export function messagesEndpoints(gateway: Gateway, counter: () => CountFn): Array<[string, Endpoint]> {
  const messages: Endpoint<MessagesRequest, Record<string, unknown>, NativeEvent> = {
    shape: messagesShape,
    parse: parseMessagesRequest,
    model: (r) => r.model,
    streams: (r) => r.stream === true,
    tokens: (r, count) => estimateMessagesTokens(r, count) + r.max_tokens,
    prompt: (r, count) => estimateMessagesTokens(r, count),
    maxOutput: (r) => r.max_tokens,
    passHeaders: anthropicHeaders,
    call(r, caller) {
      const chat = translation(r)
      const answer = { model: r.model, stopSequences: r.stop_sequences }
      return gateway.run(caller, {
        model: r.model,
        what: 'messages',
        call: (a, ctx) => {
          if (a.messages) return a.messages(r, ctx)
          const t = chat()
          for (const p of t.dropped) ctx.warn?.(p)
          return a.chat(t.request, ctx).then((c) => toMessage(c, answer) as unknown as Record<string, unknown>)
        },
      })
    },
    callStream(r, caller) {
      const chat = translation(r)
      const answer = { model: r.model, stopSequences: r.stop_sequences }
      return gateway.run<AsyncIterable<NativeEvent>>(caller, {
        model: r.model,
        what: 'messages',
        stream: true,
        call: (a, ctx) => {
          if (a.messagesStream) return a.messagesStream(r, ctx).then(primeStream)
          const t = chat()
          for (const p of t.dropped) ctx.warn?.(p)
          // primed on the chat chunks, so a failure before the first of them still falls back
          return a
            .chatStream({ ...t.request, stream: true }, ctx)
            .then(primeStream)
            // message_start must carry input_tokens before the upstream reports them: the estimate
            // (clients such as LangChain read them only there); message_delta carries the exact count
            .then((chunks) => toMessageEvents(chunks, { ...answer, inputTokens: estimateMessagesTokens(r, counter()) }) as AsyncIterable<NativeEvent>)
        },
      })
    },
    usage: (m) => usageRecord(messageUsage(m)),
    meter: () => new MessagesMeter(),
  }

  const countTokens: Endpoint<CountTokensRequest, { input_tokens: number }, never> = {
    shape: messagesShape,
    parse: parseCountTokensRequest,
    model: (r) => r.model,
    streams: () => false,
    // a count uses no tokens: only request limits apply
    tokens: () => 0,
    passHeaders: anthropicHeaders,
    async call(r, caller): Promise<Served<{ input_tokens: number }>> {
      // An Anthropic target counts exactly; for any other route the tokenizer's estimate answers.
      try {
        return await gateway.run(caller, { model: r.model, what: 'count_tokens', supports: (a: ProviderAdapter) => !!a.countTokens, call: (a, ctx) => a.countTokens!(r, ctx) })
      } catch (err) {
        if (!(err instanceof ProxyError) || err.code !== 'unsupported_operation') throw err
        const routed = gateway.model(caller.client, r.model)
        return { value: { input_tokens: estimateMessagesTokens(r, counter()) }, provider: routed.owned_by, upstreamModel: r.model, key: null, attempts: caller.attempts }
      }
    },
    usage: () => null,
  }

  return [
    [MESSAGES_PATH, messages as Endpoint],
    [COUNT_TOKENS_PATH, countTokens as Endpoint],
  ]
}
