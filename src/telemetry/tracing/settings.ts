/**
 * Whether traces are on, and where they go: the standard OTEL_* variables (the names every OpenTelemetry
 * SDK reads), or `--otlp-endpoint`, which wins over them. Traces are on when an endpoint is set, unless
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Nothing here loads OpenTelemetry.
 */
import { invalidRequest } from '../../core/errors.js'
import type { Env } from '../../store/paths.js'

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const
export type SamplerName = (typeof SAMPLERS)[number]

export interface TraceSettings {
  /** the OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces */
  url: string
  /** `key=value,key2=value2` (values URL-encoded), sent with every export: a collector's auth, say */
  headers: string | null
  serviceName: string
  sampler: SamplerName
  /** the ratio of the *traceidratio samplers, 0..1 */
  ratio: number
  /** how long one export may take, retries included (ms) */
  exportTimeoutMs: number
  /** spans waiting for export at most; more are dropped and counted */
  maxQueueSize: number
  maxExportBatchSize: number
  /** the pause between two exports (ms) */
  scheduleDelayMs: number
}

export function resolveTraceSettings(flagEndpoint: string | undefined, env: Env): TraceSettings | null {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return null
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((e) => e.trim().toLowerCase()).filter(Boolean)
  if (exporters.includes('none')) return null
  if (exporters.length > 0 && !exporters.includes('otlp')) throw invalidRequest(`OTEL_TRACES_EXPORTER: the proxy exports traces over OTLP only ('otlp' or 'none'), not '${env.OTEL_TRACES_EXPORTER}'.`)
  const url = tracesUrl(flagEndpoint, env)
  if (url === null) return null
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '').trim().toLowerCase()
  if (protocol === 'grpc') {
    throw invalidRequest("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the proxy sends traces over OTLP/HTTP (JSON). Point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318 by default) and unset the protocol.")
  }
  const sampler = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase() as SamplerName
  if (!SAMPLERS.includes(sampler)) throw invalidRequest(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')}, not '${env.OTEL_TRACES_SAMPLER}'.`)
  const ratioText = sampler.endsWith('traceidratio') ? env.OTEL_TRACES_SAMPLER_ARG : undefined
  const ratio = ratioText === undefined || ratioText.trim() === '' ? 1 : Number(ratioText)
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw invalidRequest(`OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not '${ratioText}'.`)
  const maxQueueSize = int('OTEL_BSP_MAX_QUEUE_SIZE', env.OTEL_BSP_MAX_QUEUE_SIZE, 2048, 1)
  return {
    url,
    headers: env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS ?? null,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || 'proxy',
    sampler,
    ratio,
    exportTimeoutMs: int('OTEL_EXPORTER_OTLP_TIMEOUT', env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT, 10_000, 1),
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, int('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512, 1)),
    scheduleDelayMs: int('OTEL_BSP_SCHEDULE_DELAY', env.OTEL_BSP_SCHEDULE_DELAY, 1000, 0),
  }
}

/**
 * The traces URL: a signal-specific endpoint is used as it is; a base endpoint (the flag, or
 * OTEL_EXPORTER_OTLP_ENDPOINT) gets `v1/traces` appended, as the OTLP exporter specification says.
 */
function tracesUrl(flag: string | undefined, env: Env): string | null {
  const [name, value, base] = flag
    ? ['--otlp-endpoint', flag, true]
    : env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
      ? ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, false]
      : env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? ['OTEL_EXPORTER_OTLP_ENDPOINT', env.OTEL_EXPORTER_OTLP_ENDPOINT, true]
        : [null, null, false]
  if (name === null || value === null) return null
  let url: URL
  try {
    url = new URL(value.trim())
  } catch {
    throw invalidRequest(`${name} must be an http(s) URL such as http://127.0.0.1:4318, not '${value}'.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidRequest(`${name} must be an http(s) URL (OTLP over HTTP), not '${value}'.`)
  if (!base || url.pathname.endsWith('/v1/traces')) return url.href
  return url.href.replace(/\/*$/, '') + '/v1/traces'
}

function int(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined || value.trim() === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw invalidRequest(`${name} must be a whole number, at least ${min}, not '${value}'.`)
  return n
}
