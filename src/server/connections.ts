/**
 * Limits on client connections: how long a client may take to send its request (headers, then body),
 * how long an idle keep-alive connection stays open, and how many connections may be open at once.
 * They bound what clients send, never the answer: a long stream or a slow upstream is unaffected,
 * since Node stops a request's clock once the request has been received.
 */
import { readFileSync } from 'node:fs'
import type { Server, ServerOptions } from 'node:http'
import type { Socket } from 'node:net'

export interface ConnectionLimits {
  /** from a request's first byte (or a new connection) until its headers are complete; 0: none */
  headerTimeoutMs: number
  /** then until its body is complete; 0: none */
  bodyTimeoutMs: number
  /** an idle keep-alive connection between requests */
  keepAliveTimeoutMs: number
  /** open connections at most; more are closed as they arrive */
  maxConnections: number
}

/** HAProxy's usual `timeout http-request`: programs send their headers in one packet. */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000
/** nginx's client_body_timeout: the largest default body (10 MB) at about 1.4 Mbit/s. */
export const DEFAULT_BODY_TIMEOUT_MS = 60_000
/** Above the 60 s idle timeout of common load balancers (AWS ALB), so the balancer, not this server, closes idle connections and never reuses one we just closed. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 65_000

export function withDefaults(limits: Partial<ConnectionLimits> = {}): ConnectionLimits {
  return {
    headerTimeoutMs: limits.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    bodyTimeoutMs: limits.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    maxConnections: limits.maxConnections ?? defaultMaxConnections(),
  }
}

/** Assumed where the open-file limit cannot be read (no /proc). */
const ASSUMED_FILE_LIMIT = 4096

/**
 * The default cap: below the process's open-file limit (the soft RLIMIT_NOFILE, which Node raises to
 * the hard limit at start), keeping a quarter of it, and at least one full upstream pool (256) and 64
 * more, for upstream sockets, the store, Redis, logs and the runtime's own descriptors.
 */
export function defaultMaxConnections(procLimits = readProcLimits()): number {
  const limit = openFileLimit(procLimits) ?? ASSUMED_FILE_LIMIT
  return Math.max(64, limit - Math.max(320, Math.floor(limit / 4)))
}

/** The soft "Max open files" of /proc/self/limits; null when absent or unlimited. */
export function openFileLimit(procLimits: string | null): number | null {
  const m = procLimits ? /^Max open files\s+(\d+|unlimited)\s/m.exec(procLimits) : null
  return m && m[1] !== 'unlimited' ? Number(m[1]) : null
}

function readProcLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8')
  } catch {
    return null
  }
}

/**
 * node:http options for the limits. Node's requestTimeout runs from a request's first byte to the end
 * of its body, so it is the two timeouts together; a connection that sends nothing is held to the
 * header timeout too. Node checks them every connectionsCheckingInterval (30 s by default): a quarter
 * of the shorter one, at most a second, keeps them within a second of their value.
 */
export function serverOptions(limits: ConnectionLimits): ServerOptions {
  const header = limits.headerTimeoutMs
  const request = header > 0 && limits.bodyTimeoutMs > 0 ? header + limits.bodyTimeoutMs : limits.bodyTimeoutMs
  const shortest = Math.min(...[header, limits.bodyTimeoutMs].filter((ms) => ms > 0), 4000)
  return {
    headersTimeout: header,
    requestTimeout: request,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.floor(shortest / 4)),
  }
}

export interface ConnectionFigures {
  open: number
  /** the cap */
  max: number
  /** connections closed on arrival because `max` were open, since the start */
  refused: number
}

/** Applies the cap to a server and counts its connections: open now, refused since the start. */
export class ConnectionCounter {
  readonly max: number
  #open = 0
  #refused = 0

  constructor(server: Server, max: number) {
    this.max = max
    server.maxConnections = max
    server.on('connection', (socket: Socket) => {
      this.#open++
      socket.once('close', () => this.#open--)
    })
    server.on('drop', () => this.#refused++)
  }

  figures(): ConnectionFigures {
    return { open: this.#open, max: this.max, refused: this.#refused }
  }
}
