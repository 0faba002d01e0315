import type { AttemptRecord } from '../core/attempt.js'
import type { ClientConfig } from '../core/config.js'
import type { BodyCapture } from './capture.js'

/** What is known about one finished request; the log line, the metrics and the audit row are made from it. */
export interface RequestRecord {
  requestId: string
  method: string
  path: string
  status: number
  /** total latency, from the first byte of the request to the end of the response (ms) */
  ms: number
  client: string | null
  /** the client's team, when it has one */
  team?: string | null
  model: string | null
  stream: boolean
  provider: string | null
  upstreamModel: string | null
  key: string | null
  attempts: AttemptRecord[]
  /** prompt_tokens counts every input token; cached_tokens and cache_write_tokens are the parts read from and written to the upstream's cache */
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cached_tokens?: number; cache_write_tokens?: number } | null
  /** `usage` was counted by the proxy (a stream that ended without the upstream's usage), not reported */
  usageEstimated?: boolean
  /** `cause`: what was thrown when the proxy itself failed (an internal error); the log line shows it, the client never sees it */
  error: { type: string; code: string | null; message: string; cause?: unknown } | null
  ip: string | null
  /** streams: ms from the request's start until the first chunk was written to the client */
  ttftMs?: number | null
  /** streams: ms from the request's start until the gateway handed over the stream (first upstream chunk in hand) */
  servedMs?: number | null
  /** wall-clock time the request ended (epoch ms), set when telemetry sees it */
  endedAt?: number
  /** request and response bodies, only when content capture is on for this client (or globally) */
  capture?: BodyCapture | null
  /** what the response cache did, when a cache policy applied (docs/cache.md) */
  cache?: 'hit' | 'miss' | 'bypass'
  /** a hit: the usage of the answer when it was made, i.e. what the hit saved (its own usage is zero) */
  cacheSaved?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null
  /** set while an SSE response is open, so the active-streams gauge goes down exactly once */
  streamOpen?: boolean
  /** the request's trace id (32 hex digits), when traces are on */
  traceId?: string
}

export interface Telemetry {
  /** called once the body is read: starts content capture when it is on for this client */
  captureRequest?(record: RequestRecord, client: ClientConfig, body: unknown): void
  /** called when an SSE response starts; `elapsedMs` is the time since the request began */
  streamStarted?(record: RequestRecord, elapsedMs: number): void
  /**
   * called once per request, when its answer is complete; the accounting may run a little later, in the
   * same turn of the event loop (see flush)
   */
  requestDone(record: RequestRecord): void
  /** accounts at once for every request reported and not accounted for yet; call on shutdown, before the audit writer closes */
  flush?(): void
}
