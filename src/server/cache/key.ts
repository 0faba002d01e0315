/**
 * The cache key: a SHA-256 of everything that decides an answer, in canonical JSON (object keys sorted,
 * so two bodies that differ only in key order are one request). Fields that cannot change the answer
 * (who asked, labels, whether the upstream keeps the response) are left out; everything else is in,
 * unknown fields too, so a parameter the proxy does not know of can never make two answers collide.
 */
import { createHash } from 'node:crypto'
import type { RouteConfig } from '../../core/config.js'

/** Body fields that label or route a request but do not change its answer. */
const IGNORED = new Set(['stream', 'user', 'metadata', 'store', 'safety_identifier', 'prompt_cache_key', 'client_metadata'])

export interface KeyInput {
  /** the API path: one request body means different answers on different APIs */
  api: string
  body: Record<string, unknown>
  stream: boolean
  /** the route the requested model resolves to: its targets decide which model answers */
  route: RouteConfig
  /** request headers the upstream call forwards (anthropic-version, anthropic-beta) */
  headers?: Record<string, string>
  /** set when the policy keeps a cache per client */
  clientId?: number
}

export function cacheKey(input: KeyInput): string {
  const body: Record<string, unknown> = {}
  for (const k of Object.keys(input.body)) if (!IGNORED.has(k)) body[k] = input.body[k]
  const route = {
    name: input.route.model,
    targets: input.route.targets.map((t) => [t.provider.name, t.provider.type, t.provider.baseUrl, t.upstreamModel]),
  }
  const doc = { v: 1, api: input.api, stream: input.stream, route, headers: input.headers ?? null, client: input.clientId ?? null, body }
  return createHash('sha256').update(canonicalJson(doc)).digest('hex')
}

/** JSON with object keys in sorted order at every depth; undefined members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  const obj = value as Record<string, unknown>
  const parts: string[] = []
  for (const k of Object.keys(obj).sort()) {
    if (obj[k] === undefined) continue
    parts.push(`${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
  }
  return `{${parts.join(',')}}`
}

/** A short digest of the requested model, so entries can be found (and cleared) by model. */
export function modelTag(model: string): string {
  return createHash('sha256').update(model).digest('hex').slice(0, 16)
}
