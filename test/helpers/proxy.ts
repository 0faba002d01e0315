import OpenAI from 'openai'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { run } from '../../src/cli/main.js'
import type { CliDeps } from '../../src/cli/context.js'
import { startProxy, type RunningProxy, type StartOptions } from '../../src/server/start.js'
import { openStore, type SqliteStore, type Store } from '../../src/store/db.js'
import { silentLogger } from '../../src/telemetry/logger.js'
import { PassThrough, Readable } from 'node:stream'

export function tempDataDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'proxy-test-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A fixed master key so tests never touch a keychain or depend on key files. */
export const TEST_MASTER_KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='
export const testEnv = (dataDir: string, extra: Record<string, string> = {}) => ({
  PROXY_DATA_DIR: dataDir,
  PROXY_MASTER_KEY: TEST_MASTER_KEY,
  PROXY_KEYCHAIN: 'off',
  HOME: dataDir,
  ...extra,
})

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs a `proxy` command in-process, exactly as the binary would, with captured output. */
export async function cli(dataDir: string, args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += d))
  stderr.on('data', (d) => (err += d))
  const deps: CliDeps = {
    env: testEnv(dataDir, opts.env),
    stdin: Readable.from(opts.stdin !== undefined ? [opts.stdin] : []),
    stdout,
    stderr,
    keychain: null,
  }
  const code = await run(args, deps)
  return { code, stdout: out, stderr: err }
}

/** Runs a `proxy` command that must succeed; anything else fails the test with its stderr. */
export async function cliOk(dataDir: string, args: string[], stdin?: string): Promise<CliResult> {
  const r = await cli(dataDir, args, stdin === undefined ? {} : { stdin })
  if (r.code !== 0) throw new Error(`proxy ${args.join(' ')} exited with ${r.code}: ${r.stderr}`)
  return r
}

/** `env` adds to (or, with '', blanks) the test environment, e.g. { PROXY_MASTER_KEY: '' } to use the key file. */
export async function startTestProxy(dataDir: string, opts: Pick<StartOptions, 'reloadPollMs' | 'maxBodyBytes' | 'maxJsonDepth' | 'connections' | 'cacheClock'> & { logger?: StartOptions['logger']; env?: Record<string, string> } = {}): Promise<RunningProxy> {
  return startProxy({
    dataDir,
    port: 0,
    env: testEnv(dataDir, opts.env),
    logger: opts.logger ?? silentLogger(),
    keychain: null,
    reloadPollMs: opts.reloadPollMs ?? 50,
    maxBodyBytes: opts.maxBodyBytes,
    maxJsonDepth: opts.maxJsonDepth,
    connections: opts.connections,
    cacheClock: opts.cacheClock,
  })
}

export async function withTestStore<T>(dataDir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ dataDir, env: testEnv(dataDir), keychain: null })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

/** Waits until a condition holds, polling; fails with the last value seen. */
export async function eventually<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const until = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await fn()
    if (ok(last)) return last
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export function keyFrom(text: string): string {
  const m = /sk-proxy-[A-Za-z0-9]+/.exec(text)
  if (!m) throw new Error(`no client key in: ${text}`)
  return m[0]
}

/** The error an openai SDK call failed with (the test fails if it succeeded). */
export async function apiRejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const outcome = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!(outcome instanceof OpenAI.APIError)) throw new Error(`expected an API error, got ${String(outcome)}`)
  return outcome
}

/** The SQLite handle of a store a test opened without a database URL. */
export function sqliteOf(store: Store): SqliteStore {
  if (store.kind !== 'sqlite') throw new Error(`expected a SQLite store, got ${store.kind}`)
  return store
}
