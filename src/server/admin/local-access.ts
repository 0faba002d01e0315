/**
 * How a CLI on the same machine reaches its own server without copying keys: at start the server
 * writes `<dataDir>/server.json` (its URL) and `<dataDir>/admin.token` (a fresh random token, accepted
 * as an admin credential), both mode 0600, and deletes them on a clean shutdown. Anyone who can read
 * the data directory can already read the store and its master key file, so the token gives nothing
 * new; it only saves copying an admin client key around.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export const ADMIN_TOKEN_FILE = 'admin.token'
export const SERVER_FILE = 'server.json'
/** local tokens look like this, so they are never mistaken for client keys (sk-proxy-…) */
export const LOCAL_TOKEN_PREFIX = 'proxy-local-'

export interface ServerInfo {
  /** where a client on this machine connects (a wildcard listen address becomes loopback) */
  url: string
  pid: number
  startedAt: string
}

export interface LocalAccess {
  readonly token: string
  readonly info: ServerInfo
  /** constant-time comparison with a presented bearer token */
  matches(candidate: string): boolean
  /** deletes both files, unless another server has replaced them meanwhile */
  remove(): void
}

/** The URL a local client should use for a server listening on `listenUrl`. */
export function localUrl(listenUrl: string): string {
  const url = new URL(listenUrl)
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1'
  else if (url.hostname === '[::]') url.hostname = '[::1]'
  return url.origin
}

export function writeLocalAccess(dataDir: string, listenUrl: string, now = new Date()): LocalAccess {
  const token = LOCAL_TOKEN_PREFIX + randomBytes(32).toString('base64url')
  const info: ServerInfo = { url: localUrl(listenUrl), pid: process.pid, startedAt: now.toISOString() }
  const tokenFile = path.join(dataDir, ADMIN_TOKEN_FILE)
  const serverFile = path.join(dataDir, SERVER_FILE)
  writePrivate(tokenFile, token + '\n')
  writePrivate(serverFile, JSON.stringify(info, null, 2) + '\n')
  const expected = Buffer.from(token)
  return {
    token,
    info,
    matches(candidate) {
      const given = Buffer.from(candidate)
      return given.length === expected.length && timingSafeEqual(given, expected)
    },
    remove() {
      if (readText(tokenFile)?.trim() === token) rmSync(tokenFile, { force: true })
      const current = readServerInfo(dataDir)
      if (current && current.pid === info.pid && current.startedAt === info.startedAt) rmSync(serverFile, { force: true })
    },
  }
}

/** What a local CLI finds in a data directory: the server's URL and token, or null when no server left them. */
export function readLocalAccess(dataDir: string): { info: ServerInfo; token: string | null } | null {
  const info = readServerInfo(dataDir)
  if (!info) return null
  const token = readText(path.join(dataDir, ADMIN_TOKEN_FILE))?.trim() || null
  return { info, token }
}

function readServerInfo(dataDir: string): ServerInfo | null {
  const text = readText(path.join(dataDir, SERVER_FILE))
  if (!text) return null
  try {
    const parsed = JSON.parse(text) as Partial<ServerInfo>
    return typeof parsed.url === 'string' ? { url: parsed.url, pid: Number(parsed.pid) || 0, startedAt: String(parsed.startedAt ?? '') } : null
  } catch {
    return null
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** Written under a temporary name with mode 0600 and renamed, so a reader never sees half a file. */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, text, { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, file)
}
