/**
 * What happens when a request finishes: one log line, metrics, and a row for the audit/usage writer.
 * All three are cheap on the request path; the store is written later, in batches.
 */
import { clip } from '../core/clip.js'
import type { ClientConfig, ConfigSnapshot } from '../core/config.js'
import { upstreamMs, type AuditWriter } from './audit-writer.js'
import { BodyCapture, DEFAULT_CAPTURE_MAX_BYTES } from './capture.js'
import type { LiveStats } from './live-stats.js'
import { lineWriter, type Logger } from './logger.js'
import type { ProxyMetrics } from './metrics.js'
import { SecretScrubber } from './redact.js'
import type { RequestRecord, Telemetry } from './request-record.js'

export interface TelemetryDeps {
  logger: Logger
  metrics?: ProxyMetrics
  audit?: AuditWriter
  /** capture bodies of every client, not only those with capture on */
  captureAll?: boolean
  captureMaxBytes?: number
  /** the live snapshot, so upstream error text is scrubbed of every configured key secret */
  config?: () => ConfigSnapshot
  /** the in-memory rolling windows behind /admin/v1/stats and `proxy top` */
  liveStats?: LiveStats
  /** the server's one scrubber; a private one is made from `config` when absent */
  scrubber?: SecretScrubber
}

export function createTelemetry(deps: TelemetryDeps | Logger): Telemetry & { flush(): void } {
  const { logger, metrics, audit, captureAll = false, captureMaxBytes = DEFAULT_CAPTURE_MAX_BYTES, config, liveStats } = isLogger(deps) ? ({ logger: deps } as TelemetryDeps) : deps
  // One scrubber per server: each keeps a set of every secret seen, rebuilt per snapshot.
  const scrubber = (isLogger(deps) ? undefined : deps.scrubber) ?? (config ? new SecretScrubber(config) : null)
  const writeLine = lineWriter(logger)
  // Finished requests are accounted for (metrics, audit record, live stats, log line) together, once
  // per turn of the event loop, after every answer of that turn has been written: one pass over a batch
  // keeps this code and its data warm (docs/performance.md). Limits are settled before this, at once.
  let pending: RequestRecord[] = []
  const flush = () => {
    const batch = pending
    pending = []
    for (const r of batch) {
      try {
        account(r)
      } catch (err) {
        // a bug here must not take the server down (this runs outside any request's try) nor the rest of the batch
        logger.error({ event: 'telemetry', request_id: r.requestId, err: err instanceof Error ? err.message : String(err) }, 'could not account for a request')
      }
    }
  }
  return {
    captureRequest(record: RequestRecord, client: ClientConfig, body: unknown) {
      if (captureAll || client.capture) record.capture = new BodyCapture(body, captureMaxBytes)
    },
    streamStarted(record: RequestRecord, elapsedMs: number) {
      record.servedMs = elapsedMs
      record.streamOpen = true
      metrics?.streamOpened()
      liveStats?.streamOpened()
    },
    requestDone(r: RequestRecord) {
      r.endedAt = Date.now()
      if (pending.push(r) === 1) setImmediate(flush)
    },
    flush,
  }

  function account(r: RequestRecord): void {
    if (r.streamOpen) {
      r.streamOpen = false
      metrics?.streamClosed()
      liveStats?.streamClosed()
    }
    const upstream = upstreamMs(r)
    metrics?.requestDone(r, upstream)
    audit?.add(r)
    liveStats?.requestDone(r)
    const level = r.status >= 500 ? 'error' : r.status >= 400 ? 'warn' : 'info'
    if (!logger.isLevelEnabled(level)) return
    writeLine(level, {
      request_id: r.requestId,
      // when traces are on: the trace to look up in the collector (absent otherwise; pino skips undefined)
      trace_id: r.traceId,
      method: r.method,
      // the client's own strings, clipped: a 5 MB model name is not a 5 MB log line
      path: clip(r.path),
      status: r.status,
      ms: r.ms,
      upstream_ms: upstream,
      // streams only; absent keys cost the line nothing (pino skips undefined)
      ttft_ms: r.ttftMs ?? undefined,
      client: r.client,
      ip: r.ip,
      model: r.model === null ? null : clip(r.model),
      stream: r.stream,
      provider: r.provider,
      upstream_model: r.upstreamModel,
      key: r.key,
      attempts: r.attempts.length,
      failed_attempts: r.attempts.length > 1 || r.attempts[0]?.error ? failedAttempts(r) : undefined,
      tokens: r.usage,
      tokens_estimated: r.usageEstimated || undefined,
      error: r.error === null ? undefined : { type: r.error.type, code: r.error.code, message: scrubber ? scrubber.scrub(r.error.message) : r.error.message },
      // the proxy's own failure: what was thrown, stack included (the client was told to look here)
      err: r.error?.cause === undefined ? undefined : thrown(r.error.cause),
      msg: 'request',
    })
  }
}

/** Why each failed attempt failed: provider, key label (never the secret), status, code and time. */
function failedAttempts(r: RequestRecord) {
  return r.attempts.filter((a) => a.error).map((a) => ({ provider: a.provider, model: a.upstreamModel, key: a.key, status: a.error!.status, code: a.error!.code, reason: a.error!.reason ?? null, ms: a.ms }))
}

/** What was thrown, in pino's `err` shape; the line's fence scrubs secrets from it like from the rest. */
function thrown(cause: unknown): { type: string; message: string; stack?: string } {
  if (!(cause instanceof Error)) return { type: typeof cause, message: clip(String(cause), 1000) }
  return { type: cause.name, message: clip(cause.message, 1000), stack: cause.stack === undefined ? undefined : clip(cause.stack, 4000) }
}

function isLogger(value: TelemetryDeps | Logger): value is Logger {
  return typeof (value as Logger).info === 'function' && typeof (value as Logger).child === 'function'
}
