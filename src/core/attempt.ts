/** One upstream attempt of a request, as every layer reports it (logs, metrics, audit, the admin API). */

/** Why an attempt failed, as the gateway classified it (src/gateway/outcome.ts). */
export type FailureReason =
  | 'key_rejected'
  | 'rate_limited'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'bad_request'
  | 'not_found'
  | 'client_closed'
  | 'unsupported'
  | 'error'

/** What kind of fallback served a request (never names a key). */
export type FallbackKind = 'key' | 'provider' | 'global'

export interface AttemptRecord {
  provider: string
  upstreamModel: string
  /** the key's label, never its secret */
  key: string | null
  ms: number
  error?: { status: number; code: string | null; message: string; reason?: FailureReason }
  /** how long the gateway waited before this attempt (backoff or the upstream's Retry-After) */
  waitedMs?: number
  /** what kind of fallback this attempt was; absent for the first choice */
  fallback?: FallbackKind
}

