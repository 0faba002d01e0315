/**
 * The CLI's way to a running server's admin API: the local one by default (its URL from
 * `<dataDir>/server.json`, its token from `<dataDir>/admin.token`, both written by `proxy serve`), or
 * any server with `--url` and an admin client key (`--admin-key` or PROXY_ADMIN_KEY). A `--url` that
 * names the local server itself needs no key: its token is used. The local files are read again before
 * each call, so a restarted server (new port, new token) is picked up.
 */
import path from 'node:path'
import { readLocalAccess, SERVER_FILE } from '../server/admin/local-access.js'
import type { StatsReport } from '../server/admin/stats.js'
import type { CacheStats } from '../server/cache/store.js'
import { resolveDataDir, type Env } from '../store/paths.js'

export interface AdminTarget {
  /** the server's base URL, or null when no local server left a server.json */
  url: string | null
  token: string | null
  /** what to tell the user when nothing answers */
  describe: string
  /** why no credential was found, when none was */
  noToken?: string
}

export interface AdminTargetOptions {
  url?: string
  adminKey?: string
  dataDir?: string
}

/** Where the admin calls go, re-resolved on every call (see above). */
export function adminTarget(opts: AdminTargetOptions, env: Env): () => AdminTarget {
  const key = opts.adminKey ?? env.PROXY_ADMIN_KEY ?? null
  const dataDir = resolveDataDir(opts.dataDir, env)
  if (opts.url) {
    const url = opts.url.replace(/\/+$/, '')
    return () => {
      if (key) return { url, token: key, describe: url }
      const local = readLocalAccess(dataDir)
      if (local && sameServer(local.info.url, url)) return { url, token: local.token, describe: url }
      const why = local ? `it is not the local server (${local.info.url} in ${path.join(dataDir, SERVER_FILE)})` : `no local server left a server.json in ${dataDir}`
      return { url, token: null, describe: url, noToken: `--url ${url} needs an admin client key: pass --admin-key (or PROXY_ADMIN_KEY); ${why}.` }
    }
  }
  return () => {
    const local = readLocalAccess(dataDir)
    if (!local) return { url: null, token: key, describe: `the local server (no server.json in ${dataDir})` }
    return { url: local.info.url, token: key ?? local.token, describe: local.info.url }
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** Whether two URLs reach the same server: scheme, host (any loopback name counts as one) and port, ignoring a trailing slash. */
export function sameServer(a: string, b: string): boolean {
  const key = (text: string): string | null => {
    try {
      const u = new URL(text)
      const host = LOOPBACK.has(u.hostname) ? 'loopback' : u.hostname
      return `${u.protocol}//${host}:${u.port}${u.pathname.replace(/\/+$/, '')}${u.search}`
    } catch {
      return null
    }
  }
  const ka = key(a)
  return ka !== null && ka === key(b)
}

export type AdminErrorKind = 'unreachable' | 'auth' | 'http'

export class AdminApiError extends Error {
  constructor(
    message: string,
    readonly kind: AdminErrorKind,
    readonly status: number | null = null,
  ) {
    super(message)
    this.name = 'AdminApiError'
  }
}

export interface AdminClient {
  target(): AdminTarget
  stats(): Promise<StatsReport>
  cacheStats(): Promise<CacheStats>
  /** empties the response cache, or only the answers to one model name */
  cacheClear(model?: string): Promise<{ cleared: number; model: string | null }>
}

export function createAdminClient(target: () => AdminTarget, opts: { timeoutMs?: number } = {}): AdminClient {
  const timeoutMs = opts.timeoutMs ?? 3000
  const call = async <T>(path: string, method = 'GET'): Promise<T> => {
    const t = target()
    if (!t.url) throw new AdminApiError(`No proxy server found: ${t.describe}. Start one with 'proxy serve', or pass --url and --admin-key.`, 'unreachable')
    let res: Response
    try {
      res = await fetch(`${t.url}${path}`, { method, headers: t.token ? { authorization: `Bearer ${t.token}` } : {}, signal: AbortSignal.timeout(timeoutMs) })
    } catch (e) {
      throw new AdminApiError(`Cannot reach the proxy at ${t.url}: ${reason(e)}. Is 'proxy serve' running?`, 'unreachable')
    }
    const text = await res.text().catch(() => '')
    if (!res.ok) {
      const message = errorMessage(text) ?? `HTTP ${res.status}`
      if (res.status === 401 || res.status === 403) {
        const hint = t.token ? '' : ` ${t.noToken ?? "No admin credential was found: pass --admin-key (or PROXY_ADMIN_KEY), or run this on the server's machine with its --data-dir."}`
        throw new AdminApiError(`The proxy at ${t.url} refused the admin credential (${res.status}): ${message}${hint}`, 'auth', res.status)
      }
      throw new AdminApiError(`The proxy at ${t.url} answered ${res.status}: ${message}`, 'http', res.status)
    }
    try {
      return JSON.parse(text) as T
    } catch {
      throw new AdminApiError(`The proxy at ${t.url} answered with something that is not JSON; is that URL a proxy server?`, 'http', res.status)
    }
  }
  return {
    target,
    stats: () => call<StatsReport>('/admin/v1/stats'),
    cacheStats: () => call<CacheStats>('/admin/v1/cache'),
    cacheClear: (model) => call(`/admin/v1/cache${model === undefined ? '' : `?model=${encodeURIComponent(model)}`}`, 'DELETE'),
  }
}

function reason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause
  if (cause?.code === 'ECONNREFUSED') return 'connection refused'
  if (cause?.code) return cause.code
  if ((e as Error)?.name === 'TimeoutError') return 'no answer in time'
  return cause?.message ?? (e instanceof Error ? e.message : String(e))
}

function errorMessage(text: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } }
    return typeof body.error?.message === 'string' ? body.error.message : null
  } catch {
    return null
  }
}
