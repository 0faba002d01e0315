/** The two ways a stream event is written, whatever the API: as the upstream sent it when it went through unchanged. */
import { rawJsonOf } from '../core/raw-json.js'

/** The event's JSON: the upstream's own bytes when the event went through unchanged. */
export function eventJson(value: object): string {
  const raw = rawJsonOf(value)
  return typeof raw === 'string' ? raw : JSON.stringify(value)
}

/** OpenAI chat completions: `data:` lines only. */
export const dataEvent = (value: object): string => `data: ${eventJson(value)}\n\n`

/** Anthropic Messages and OpenAI Responses: each event named by its `type`. */
export const namedEvent = (value: object): string => `event: ${(value as { type?: string }).type ?? 'message'}\ndata: ${eventJson(value)}\n\n`
