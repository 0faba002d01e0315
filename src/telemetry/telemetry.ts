import type { Logger } from './logger.js'
import type { RequestRecord, Telemetry } from './request-record.js'

/** One JSON log line per request, with every attempt and why it failed. */
export function createTelemetry(logger: Logger): Telemetry {
  return {
    requestDone(r: RequestRecord) {
      const line = {
        request_id: r.requestId,
        method: r.method,
        path: r.path,
        status: r.status,
        ms: r.ms,
        client: r.client,
        ip: r.ip,
        model: r.model,
        stream: r.stream,
        provider: r.provider,
        upstream_model: r.upstreamModel,
        key: r.key,
        attempts: r.attempts.length,
        failed_attempts: r.attempts.filter((a) => a.error).map((a) => ({ provider: a.provider, key: a.key, status: a.error!.status, code: a.error!.code, ms: a.ms })),
        upstream_ms: r.attempts.at(-1)?.ms ?? null,
        tokens: r.usage,
        error: r.error,
      }
      if (r.status >= 500) logger.error(line, 'request')
      else if (r.status >= 400) logger.warn(line, 'request')
      else logger.info(line, 'request')
    },
  }
}
