/**
 * The only readers of upstream stream bytes. Both flush a final event or line that lacks its
 * terminator: real upstreams (and recorded transcripts) sometimes end without one.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser'

export interface SseEvent {
  event: string | undefined
  data: string
}

export async function* readSse(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder()
  let pending: SseEvent[] = []
  const parser = createParser({
    onEvent: (msg: EventSourceMessage) => {
      pending.push({ event: msg.event, data: msg.data })
    },
  })
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }))
    if (pending.length > 0) {
      const ready = pending
      pending = []
      yield* ready
    }
  }
  // A blank line terminates the last event even when the upstream (or a transcript) omitted it.
  parser.feed(decoder.decode() + '\n\n')
  yield* pending
}

export async function* readNdjson<T = unknown>(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<T> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    let newline: number
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim()
      buffer = buffer.slice(newline + 1)
      if (line) yield JSON.parse(line) as T
    }
  }
  buffer += decoder.decode()
  if (buffer.trim()) yield JSON.parse(buffer.trim()) as T
}
