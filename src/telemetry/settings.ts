/**
 * Observability settings for `proxy serve`: flag > PROXY_* variable > default, like the other settings.
 */
import { invalidRequest } from '../core/errors.js'
import type { Env } from '../store/paths.js'
import { objectStoreSettings } from '../store/object-store.js'
import { DEFAULT_CAPTURE_MAX_BYTES } from './capture.js'
import { DEFAULT_CAPTURE_INLINE_MAX } from './capture-offload.js'

export type MetricsAuth = 'admin' | 'none' | 'auto'
export type LogFormat = 'json' | 'pretty' | 'auto'

export interface ObservabilitySettings {
  /** capture request/response bodies of every client (otherwise only clients with capture on) */
  captureAll: boolean
  captureMaxBytes: number
  /** s3://bucket/prefix: bodies over captureInlineMax go there instead of the audit row; null keeps every body inline */
  captureStore: string | null
  captureInlineMax: number
  /** delete audit rows older than this many days, hourly; null keeps them */
  auditRetentionDays: number | null
  /** admin: /metrics needs an admin client key; none: open; auto: open on a loopback address, admin otherwise */
  metricsAuth: MetricsAuth
  auditFlushMs: number
  logFormat: LogFormat
}

export interface ObservabilityFlags {
  capture?: boolean
  captureMaxBytes?: string
  captureStore?: string
  captureInlineMax?: string
  auditRetentionDays?: string
  metricsAuth?: string
  logFormat?: string
}

export const DEFAULT_OBSERVABILITY: ObservabilitySettings = {
  captureAll: false,
  captureMaxBytes: DEFAULT_CAPTURE_MAX_BYTES,
  captureStore: null,
  captureInlineMax: DEFAULT_CAPTURE_INLINE_MAX,
  auditRetentionDays: null,
  metricsAuth: 'auto',
  auditFlushMs: 100,
  logFormat: 'auto',
}

/** the cap per captured body when a capture store is set and no cap is given */
export const CAPTURE_MAX_BYTES_WITH_STORE = 256 * 1024

export function resolveObservability(flags: ObservabilityFlags, env: Env): ObservabilitySettings {
  const capture = flags.capture ?? onOff('PROXY_CAPTURE', env.PROXY_CAPTURE)
  const captureStore = flags.captureStore ?? env.PROXY_CAPTURE_STORE ?? ''
  // checked now, so a typo stops `proxy serve` before it listens
  if (captureStore) objectStoreSettings(captureStore, env)
  // Large bodies are what a capture store is for: the default cap rises with one.
  const maxBytes = int('--capture-max-bytes / PROXY_CAPTURE_MAX_BYTES', flags.captureMaxBytes ?? env.PROXY_CAPTURE_MAX_BYTES, captureStore ? CAPTURE_MAX_BYTES_WITH_STORE : DEFAULT_CAPTURE_MAX_BYTES, 256)
  const inlineMax = int('--capture-inline-max / PROXY_CAPTURE_INLINE_MAX', flags.captureInlineMax ?? env.PROXY_CAPTURE_INLINE_MAX, DEFAULT_CAPTURE_INLINE_MAX, 0)
  const retention = flags.auditRetentionDays ?? env.PROXY_AUDIT_RETENTION_DAYS
  const days = retention === undefined || retention === '' || retention === '0' || retention === 'off' ? null : Number(retention)
  if (days !== null && (!Number.isFinite(days) || days <= 0)) {
    throw invalidRequest(`--audit-retention-days / PROXY_AUDIT_RETENTION_DAYS must be a positive number of days (or 0/off), not '${retention}'.`)
  }
  const metricsAuth = (flags.metricsAuth ?? env.PROXY_METRICS_AUTH ?? 'auto').toLowerCase()
  if (metricsAuth !== 'admin' && metricsAuth !== 'none' && metricsAuth !== 'auto') {
    throw invalidRequest(`--metrics-auth / PROXY_METRICS_AUTH must be admin, none or auto, not '${metricsAuth}'.`)
  }
  const logFormat = (flags.logFormat ?? env.PROXY_LOG_FORMAT ?? 'auto').toLowerCase()
  if (logFormat !== 'json' && logFormat !== 'pretty' && logFormat !== 'auto') {
    throw invalidRequest(`--log-format / PROXY_LOG_FORMAT must be json, pretty or auto, not '${logFormat}'.`)
  }
  return {
    captureAll: capture ?? false,
    captureMaxBytes: maxBytes,
    captureStore: captureStore || null,
    captureInlineMax: inlineMax,
    auditRetentionDays: days,
    metricsAuth,
    auditFlushMs: int('PROXY_AUDIT_FLUSH_MS', env.PROXY_AUDIT_FLUSH_MS, DEFAULT_OBSERVABILITY.auditFlushMs, 10, 5000),
    logFormat,
  }
}

/** Whether /metrics needs an admin key for a server listening on `host`. */
export function metricsNeedAdmin(auth: MetricsAuth, host: string): boolean {
  if (auth !== 'auto') return auth === 'admin'
  return !isLoopback(host)
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1'
}

function onOff(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined
  const v = value.toLowerCase()
  if (v === 'on' || v === 'true' || v === '1' || v === 'yes') return true
  if (v === 'off' || v === 'false' || v === '0' || v === 'no') return false
  throw invalidRequest(`${name} must be on or off, not '${value}'.`)
}

function int(name: string, value: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw invalidRequest(`${name} must be a whole number from ${min} to ${max}, not '${value}'.`)
  return n
}
