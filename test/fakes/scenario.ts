/**
 * What a fake upstream plays: the scenarios of the provider conformance suite and the conformance matrix,
 * which every fake answers in its own provider's wire format, and the small pieces the fakes share to
 * write them (how text is cut into stream pieces, how a stream's bytes are sent).
 */
import type { ServerResponse } from 'node:http'

/**
 * Token counts an answer reports. `prompt` counts every input token, `cached` those of them read from the
 * prompt cache, `reasoning` those of `completion` spent reasoning; the last two only where the wire has them.
 */
export interface PlayedUsage {
  prompt: number
  completion: number
  reasoning?: number
  cached?: number
}

/** One tool call an answer carries. */
export interface PlayedCall {
  id: string
  name: string
  args: Record<string, unknown>
}

/** What every streamed scenario may add: how the bytes travel. */
interface StreamedAs {
  /** the stream is written in pieces of this many bytes (1 splits every event and character); whole events when unset */
  pieceSize?: number
}

export type Scenario =
  /** a plain answer, with the model's reasoning text first when given; streamed in several pieces when asked */
  | ({ kind: 'text'; text: string; usage: PlayedUsage; reasoning?: string } & StreamedAs)
  /**
   * one tool call (with optional text before it), and `parallel` calls after it in the same answer;
   * arguments streamed in several fragments, one call after the other
   */
  | ({ kind: 'tool_call'; id: string; name: string; args: Record<string, unknown>; text?: string; parallel?: PlayedCall[]; usage: PlayedUsage; reasoning?: string } & StreamedAs)
  /** the upstream refuses with this HTTP status and message, in its own error format */
  | { kind: 'error'; status: number; message: string }
  /** a stream that sends some text and then fails in the provider's own mid-stream error form */
  | ({ kind: 'stream_error'; text: string; message: string } & StreamedAs)

/** Every call of a tool_call scenario, in order. */
export function callsOf(s: Extract<Scenario, { kind: 'tool_call' }>): PlayedCall[] {
  return [{ id: s.id, name: s.name, args: s.args }, ...(s.parallel ?? [])]
}

/** Text in pieces of at most `size` characters (code points), as fakes stream it; none for empty text. */
export function piecesOf(text: string, size: number): string[] {
  return text.match(new RegExp(`.{1,${size}}`, 'gsu')) ?? []
}

/**
 * Writes a stream's events (each already in its wire form) and ends the response: one write per event, or,
 * with `pieceSize`, the bytes of all of them in pieces of that size, with a turn of the event loop between
 * writes so the reader meets every split.
 */
export async function writeStream(res: ServerResponse, events: string[], pieceSize?: number): Promise<void> {
  if (!pieceSize) {
    for (const e of events) res.write(e)
    res.end()
    return
  }
  const bytes = Buffer.from(events.join(''))
  for (let i = 0; i < bytes.length; i += pieceSize) {
    if (res.destroyed) return
    res.write(bytes.subarray(i, i + pieceSize))
    await new Promise((r) => setImmediate(r))
  }
  res.end()
}
