import type { Readable, Writable } from 'node:stream'
import { Command, Option } from 'commander'
import type { Store } from '../store/db.js'
import type { KeychainBackend } from '../store/master-key.js'
import { resolveDataDir, type Env } from '../store/paths.js'

/** Everything a command touches outside itself, so tests can run commands in-process. */
export interface CliDeps {
  env: Env
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown }
  stdout: Writable & { isTTY?: boolean }
  stderr: Writable & { isTTY?: boolean }
  keychain?: KeychainBackend | null
  /** long-running commands (serve) wait on this; tests resolve it to stop them */
  stopSignal?: AbortSignal
}

/** A failure the user can act on: printed without a stack trace, with its own exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

export interface StoreOptions {
  dataDir?: string
  databaseUrl?: string
}

/** Where the store is: the data directory (SQLite, and the master key file), and optionally PostgreSQL. */
export function dataDirOption(cmd: Command): Command {
  return dataDirOnlyOption(cmd).addOption(databaseUrlOption())
}

/** For commands that read the data directory (server.json, admin.token) but never open the store. */
export function dataDirOnlyOption(cmd: Command): Command {
  return cmd.addOption(new Option('--data-dir <dir>', 'data directory (default: $PROXY_DATA_DIR or ~/.local/share/proxy)'))
}

export function databaseUrlOption(): Option {
  return new Option('--database-url <url>', 'keep the store in PostgreSQL, e.g. postgres://proxy@db:5432/proxy (or $PROXY_DATABASE_URL); SQLite in the data dir without it')
}

/** The PostgreSQL URL from the flag or PROXY_DATABASE_URL, checked; null for SQLite. */
export function resolveDatabaseUrl(flag: string | undefined, env: Env): string | null {
  const url = flag ?? env.PROXY_DATABASE_URL
  if (!url) return null
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new CliError(`--database-url (or PROXY_DATABASE_URL) must be a postgres:// or postgresql:// URL, not '${url.split(':')[0]}:…'.`)
  return url
}

export function jsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print machine-readable JSON')
}

export async function withStore<T>(deps: CliDeps, opts: StoreOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  // The store (SQLite, migrations, Fernet) is loaded only by commands that open it.
  const { openStore } = await import('../store/db.js')
  const store = await openStore({ dataDir: resolveDataDir(opts.dataDir, deps.env), databaseUrl: resolveDatabaseUrl(opts.databaseUrl, deps.env), env: deps.env, keychain: deps.keychain })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

export function out(deps: CliDeps, text: string): void {
  deps.stdout.write(text.endsWith('\n') ? text : text + '\n')
}

export function err(deps: CliDeps, text: string): void {
  deps.stderr.write(text.endsWith('\n') ? text : text + '\n')
}

export function printJson(deps: CliDeps, value: unknown): void {
  out(deps, JSON.stringify(value, null, 2))
}

/** Plain aligned columns: readable in a terminal, easy to grep, no box-drawing to strip. */
export function table<T extends object>(rows: T[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : Array.isArray(v) ? v.join(',') : String(v))
  const get = (r: T, c: string) => (r as Record<string, unknown>)[c]
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(get(r, c)).length)))
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(get(r, c)))))].join('\n')
}

/** The argument parser of a repeatable option: every value, in order. */
export const repeatable = (value: string, previous: string[] = []): string[] => [...previous, value]

export function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0) throw new CliError(`${name} must be a whole number, not '${value}'.`)
    return n
  }
}
