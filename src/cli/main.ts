import { CommanderError } from 'commander'
import { isProxyError } from '../core/errors.js'
import { CliError, type CliDeps } from './context.js'
import { buildProgram } from './program.js'

/**
 * Runs a command and turns every expected failure into one line on stderr and a non-zero exit code.
 * Nothing here calls process.exit, so pending writes (logs, the store) finish first.
 */
export async function run(argv: string[], deps: CliDeps): Promise<number> {
  const program = buildProgram(deps).exitOverride()
  for (const sub of program.commands) exitOverrideDeep(sub)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return 0
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : e.exitCode || 2
    const message = await describeError(e)
    deps.stderr.write(`error: ${message}\n`)
    return e instanceof CliError ? e.exitCode : 1
  }
}

function exitOverrideDeep(cmd: ReturnType<typeof buildProgram>): void {
  cmd.exitOverride()
  for (const sub of cmd.commands) exitOverrideDeep(sub)
}

async function describeError(e: unknown): Promise<string> {
  // Loaded only on failure: `proxy --version` must not load the store.
  const [{ MasterKeyError }, { StoreVersionError }, { StoreConnectionError }] = await Promise.all([import('../store/master-key.js'), import('../store/migrate.js'), import('../store/dialect.js')])
  if (e instanceof CliError || e instanceof MasterKeyError || e instanceof StoreVersionError || e instanceof StoreConnectionError || isProxyError(e)) return e.message
  const code = (e as NodeJS.ErrnoException)?.code
  if (code === 'EADDRINUSE') return `${(e as Error).message}: the port is taken; choose another with --port.`
  if (code === 'EADDRNOTAVAIL') return `${(e as Error).message}: no network interface of this machine has that address; choose another with --host.`
  if (code === 'ENOTFOUND') return `${(e as Error).message}: the host name does not resolve; check --host.`
  if (code === 'EACCES' || code === 'EPERM') return `${(e as Error).message}: permission denied.`
  if (code === 'SQLITE_BUSY') return 'The store is busy (another process holds a write lock); try again.'
  return e instanceof Error ? (e.stack ?? e.message) : String(e)
}

export async function main(argv: string[]): Promise<void> {
  // `proxy keys ls | head` closes the pipe before the output ends: the reader has what it wanted, so
  // end quietly instead of crashing on EPIPE. Not for serve, whose logs must never stop the server.
  if (argv[2] !== 'serve') process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e
    process.exit(process.exitCode ?? 0)
  })
  process.exitCode = await run(argv.slice(2), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
}
