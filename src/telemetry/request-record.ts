import type { AttemptRecord } from '../gateway/gateway.js'

/** What is known about one finished request; the log line (and later metrics and audit) are made from it. */
export interface RequestRecord {
  requestId: string
  method: string
  path: string
  status: number
  ms: number
  client: string | null
  model: string | null
  stream: boolean
  provider: string | null
  upstreamModel: string | null
  key: string | null
  attempts: AttemptRecord[]
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null
  error: { type: string; code: string | null; message: string } | null
  ip: string | null
}

export interface Telemetry {
  requestDone(record: RequestRecord): void
}
