import { readFileSync } from 'node:fs'
import * as z from '../core/zod.js'
import { DEFAULT_MAX_JSON_DEPTH } from '../server/json-depth.js'
import type { ConnectionLimits } from '../server/connections.js'
import type { Env } from '../store/paths.js'
import { CliError, resolveDatabaseUrl } from './context.js'

/** The optional config file: the lowest layer under flags and PROXY_* variables. */
const fileSchema = z.strictObject({
  host: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional(),
  data_dir: z.string().optional(),
  database_url: z.string().optional(),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  max_body_bytes: z.number().int().min(1024).optional(),
  max_json_depth: z.number().int().min(1).optional(),
  header_timeout_seconds: z.number().positive().max(3600).optional(),
  body_timeout_seconds: z.number().positive().max(3600).optional(),
  keepalive_timeout_seconds: z.number().positive().max(3600).optional(),
  max_connections: z.number().int().min(1).optional(),
})

export interface ServeFlags {
  host?: string
  port?: string
  dataDir?: string
  databaseUrl?: string
  logLevel?: string
  maxBody?: string
  maxJsonDepth?: string
  headerTimeout?: string
  bodyTimeout?: string
  keepaliveTimeout?: string
  maxConnections?: string
  config?: string
}

export interface ServeSettings {
  host: string
  port: number
  dataDir: string | undefined
  /** postgres://… from the flag, PROXY_DATABASE_URL or the file; null for SQLite in the data dir */
  databaseUrl: string | null
  logLevel: string
  maxBodyBytes: number
  maxJsonDepth: number
  /** only what flags, variables or the file set; the server's defaults fill the rest */
  connections: Partial<ConnectionLimits>
}

export function resolveServeSettings(flags: ServeFlags, env: Env): ServeSettings {
  const file = loadFile(flags.config ?? env.PROXY_CONFIG)
  const port = Number(flags.port ?? env.PROXY_PORT ?? file.port ?? 8000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`Port must be a whole number from 0 to 65535, not '${flags.port ?? env.PROXY_PORT}'.`)
  const maxBodyBytes = Number(flags.maxBody ?? env.PROXY_MAX_BODY_BYTES ?? file.max_body_bytes ?? 10 * 1024 * 1024)
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new CliError('The body limit must be a whole number of bytes, at least 1024.')
  const maxJsonDepth = Number(flags.maxJsonDepth ?? env.PROXY_MAX_JSON_DEPTH ?? file.max_json_depth ?? DEFAULT_MAX_JSON_DEPTH)
  if (!Number.isInteger(maxJsonDepth) || maxJsonDepth < 1) throw new CliError('The JSON nesting limit (--max-json-depth, PROXY_MAX_JSON_DEPTH) must be a whole number, at least 1.')
  const connections: Partial<ConnectionLimits> = {}
  const header = seconds('--header-timeout', 'PROXY_HEADER_TIMEOUT_SECONDS', flags.headerTimeout ?? env.PROXY_HEADER_TIMEOUT_SECONDS, file.header_timeout_seconds)
  if (header !== undefined) connections.headerTimeoutMs = header
  const body = seconds('--body-timeout', 'PROXY_BODY_TIMEOUT_SECONDS', flags.bodyTimeout ?? env.PROXY_BODY_TIMEOUT_SECONDS, file.body_timeout_seconds)
  if (body !== undefined) connections.bodyTimeoutMs = body
  const keepAlive = seconds('--keepalive-timeout', 'PROXY_KEEPALIVE_TIMEOUT_SECONDS', flags.keepaliveTimeout ?? env.PROXY_KEEPALIVE_TIMEOUT_SECONDS, file.keepalive_timeout_seconds)
  if (keepAlive !== undefined) connections.keepAliveTimeoutMs = keepAlive
  const max = flags.maxConnections ?? env.PROXY_MAX_CONNECTIONS ?? file.max_connections
  if (max !== undefined) {
    const n = Number(max)
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--max-connections (or PROXY_MAX_CONNECTIONS) must be a whole number, at least 1, not '${max}'.`)
    connections.maxConnections = n
  }
  return {
    connections,
    host: flags.host ?? env.PROXY_HOST ?? file.host ?? '127.0.0.1',
    port,
    dataDir: flags.dataDir ?? env.PROXY_DATA_DIR ?? file.data_dir,
    databaseUrl: resolveDatabaseUrl(flags.databaseUrl, { ...env, PROXY_DATABASE_URL: env.PROXY_DATABASE_URL ?? file.database_url }),
    logLevel: flags.logLevel ?? env.PROXY_LOG_LEVEL ?? file.log_level ?? 'info',
    maxBodyBytes,
    maxJsonDepth,
  }
}

/** A timeout in seconds (fractions allowed) from a flag or variable, else the file, as milliseconds. */
function seconds(flag: string, variable: string, text: string | undefined, fromFile: number | undefined): number | undefined {
  if (text === undefined || text === '') return fromFile === undefined ? undefined : Math.round(fromFile * 1000)
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new CliError(`${flag} (or ${variable}) must be a number of seconds above 0 and at most 3600, not '${text}'.`)
  return Math.round(n * 1000)
}

function loadFile(path: string | undefined): z.infer<typeof fileSchema> {
  if (!path) return {}
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new CliError(`Cannot read config file ${path}: ${(err as Error).message}`)
  }
  const parsed = fileSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new CliError(`Config file ${path}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`)
  }
  return parsed.data
}
