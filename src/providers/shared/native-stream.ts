/**
 * Native event streams (Anthropic Messages, OpenAI Responses), relayed as they arrive. Each SSE event is
 * parsed once and keeps its data bytes (core/raw-json.ts), so the server writes it unchanged. An error
 * event is thrown as a ProxyError once the events before it were yielded; a stream that ends before its
 * terminal event is thrown as truncated, so the client is told instead of left with half an answer.
 */
import { ProxyError } from '../../core/errors.js'
import { attachRawJson } from '../../core/raw-json.js'
import type { UpstreamResponse } from './http.js'
import { readSse } from './stream-readers.js'
import { upstreamNetworkError } from './upstream-error.js'
import type { CallContext, NativeEvent } from '../types.js'

export interface NativeStreamRules {
  /** the error an event stands for, or null for an ordinary event */
  errorOf(event: NativeEvent): ProxyError | null
  /** the event types that end a complete stream */
  terminal: ReadonlySet<string>
}

export async function* nativeEvents(res: UpstreamResponse, provider: string, ctx: CallContext, rules: NativeStreamRules): AsyncGenerator<NativeEvent> {
  let complete = false
  try {
    for await (const sse of readSse(res.body)) {
      // OpenAI-compatible hosts sometimes end a Responses stream the chat way
      if (sse.data === '[DONE]') continue
      const event = parseEvent(sse.data, sse.event, provider)
      const error = rules.errorOf(event)
      if (error) throw error
      if (rules.terminal.has(event.type)) complete = true
      yield event
    }
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  } finally {
    // read to its end when it finished (the connection is reused), dropped when the reader left early
    res.body.release()
  }
  if (!complete) throw streamTruncated(provider)
}

function parseEvent(data: string, name: string | undefined, provider: string): NativeEvent {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    parsed = null
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ProxyError({ status: 502, type: 'upstream_error', code: 'upstream_bad_stream', message: `Provider '${provider}' sent a stream event that is not a JSON object.` })
  }
  const event = parsed as NativeEvent
  if (typeof event.type !== 'string') {
    if (!name) throw new ProxyError({ status: 502, type: 'upstream_error', code: 'upstream_bad_stream', message: `Provider '${provider}' sent a stream event without a type.` })
    // named only by its `event:` line: the type is added, so the object is written anew
    event.type = name
  } else if (!data.includes('\n')) {
    // data spread over several lines is serialised again, as one `data:` line must hold it
    attachRawJson(event, data)
  }
  return event
}

export function streamTruncated(provider: string): ProxyError {
  return new ProxyError({
    status: 502,
    type: 'upstream_error',
    code: 'upstream_stream_truncated',
    message: `Provider '${provider}' ended the stream before the answer was complete.`,
    retryable: true,
  })
}
