/**
 * `proxy serve` runs node with V8 flags that only node's own command line can set, so the `proxy`
 * command starts node again with them, unless that command line already decides (`node
 * --no-memory-reducer …` as the systemd unit runs it, or `node --memory-reducer …` to keep it):
 * - the memory reducer off: after a quiet spell it left the server slower under every later load;
 * - a smaller young generation, at its full size from the start (SEMI_SPACE_FLAGS);
 * - on a machine or CPU set of one CPU, GC on the main thread: helper threads there only preempt it.
 * The new node also gets glibc's malloc thresholds fixed (SERVE_ENV), which only the environment at
 * start can set.
 * Where node has `process.execve` (22.15 and later, not on Windows) the new node replaces this process:
 * one process, same pid. On node 20 it is a child, and this process stays to forward signals and hand
 * back its exit status. The executable carries the flags instead (build/exe.ts).
 * The measurements behind each: docs/performance.md, "Why the code is the way it is".
 *
 * This module is loaded before anything else, so the parent stays small.
 */
import { spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'

export const SERVE_V8_FLAG = '--no-memory-reducer'
export const ONE_CPU_GC_FLAG = '--single-threaded-gc'
/**
 * Semi-spaces of 4 MB instead of V8's 16: less memory under load for a little throughput on a saturated
 * core. At 4 MB from the start rather than grown from 1: the start then collects garbage less often, and
 * an idle server's RSS is the same (docs/performance.md). A size on node's own command line, either
 * bound, is kept, and neither is added.
 */
export const SEMI_SPACE_FLAGS = ['--max-semi-space-size=4', '--min-semi-space-size=4'] as const

/** The V8 flags `serve` runs with on a machine (or CPU set) of `cpus` CPUs. */
export function serveV8Flags(cpus: number): string[] {
  return cpus <= 1 ? [SERVE_V8_FLAG, ...SEMI_SPACE_FLAGS, ONE_CPU_GC_FLAG] : [SERVE_V8_FLAG, ...SEMI_SPACE_FLAGS]
}

/**
 * glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MB), and its trim
 * threshold with it: each arena then keeps up to twice that of freed memory. Setting any threshold turns that off;
 * this one is glibc's default value, so only the raising stops: about 10 MB less RSS under load, and
 * no more system calls than before (docs/performance.md). Other C libraries ignore it.
 */
export const SERVE_ENV: Readonly<Record<string, string>> = { MALLOC_TRIM_THRESHOLD_: '131072' }

/** SERVE_ENV as shell (and systemd) assignments: `NAME=value …` */
export const SERVE_ENV_ASSIGNMENTS = Object.entries(SERVE_ENV).map(([name, value]) => `${name}=${value}`).join(' ')

/** glibc's variables for those thresholds: one already set (or a malloc tunable) is the user's decision */
const MALLOC_DECIDED = /^MALLOC_(TRIM_THRESHOLD|MMAP_THRESHOLD|TOP_PAD|MMAP_MAX)_$/

/** `env` with SERVE_ENV added, unless it already sets glibc's malloc thresholds itself. */
export function serveEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const decided = Object.entries(env).some(([name, value]) => MALLOC_DECIDED.test(name) || (name === 'GLIBC_TUNABLES' && value?.includes('glibc.malloc.')))
  return decided ? env : { ...env, ...SERVE_ENV }
}

/** Set in the child's environment to the parent's pid, so serve can stop if the parent is killed. */
export const SUPERVISOR_ENV = 'PROXY_SUPERVISOR_PID'

const DECIDED = /^--(no[-_])?memory[-_]reducer$/
const GC_DECIDED = /^--(no[-_])?single[-_]threaded([-_]gc)?$/
const SEMI_SPACE_DECIDED = /^--(max|min)[-_]semi[-_]space[-_]size(=|$)/
/** for each flag serve adds beside the memory reducer's, the node arguments that already decide it */
const ALREADY: Record<string, RegExp> = {
  [ONE_CPU_GC_FLAG]: GC_DECIDED,
  ...Object.fromEntries(SEMI_SPACE_FLAGS.map((flag) => [flag, SEMI_SPACE_DECIDED])),
}

/**
 * The node arguments to start `serve` with its flags, or null when this process should just run the
 * command: another command, node's command line already sets the memory reducer either way (it then
 * decides every flag), or Windows, where a detached child gets a console of its own and process groups
 * do not exist. `cpus` is how many CPUs this process may run on (its affinity, inherited by the child).
 */
export function respawnArgs(argv: readonly string[], execArgv: readonly string[], platform: NodeJS.Platform, cpus = availableParallelism()): string[] | null {
  if (argv[2] !== 'serve' || platform === 'win32') return null
  if (execArgv.some((arg) => DECIDED.test(arg))) return null
  // what node's own command line already says is kept, and wins
  const flags = serveV8Flags(cpus).filter((flag) => !ALREADY[flag] || !execArgv.some((arg) => ALREADY[flag]!.test(arg)))
  return [...execArgv, ...flags, ...argv.slice(1)]
}

/** Whether V8's memory reducer runs in a process started with these node arguments (the last one wins). */
export function memoryReducerState(execArgv: readonly string[]): 'on' | 'off' {
  return lastSays(execArgv, DECIDED) === false ? 'off' : 'on'
}

/** Whether V8 collects garbage on the main thread only in a process started with these node arguments. */
export function gcThreads(execArgv: readonly string[]): 'main thread' | 'parallel' {
  return lastSays(execArgv, GC_DECIDED) === true ? 'main thread' : 'parallel'
}

/** What the last of these node arguments to match `flag` says (V8's last word wins): on, off (`--no-…`), or nothing. */
function lastSays(execArgv: readonly string[], flag: RegExp): boolean | undefined {
  const last = execArgv.filter((arg) => flag.test(arg)).at(-1)
  return last === undefined ? undefined : !/^--no[-_]/.test(last)
}

// SIGHUP is not forwarded: when the terminal goes away the parent dies of it, the child sees its IPC
// channel close and drains, as it would on SIGTERM, instead of being killed outright.
const FORWARDED = ['SIGINT', 'SIGTERM'] as const

type Execve = (file: string, args: readonly string[], env?: NodeJS.ProcessEnv) => never

/**
 * Runs node with `args` in place of this process where node can (`process.execve`), else as a child
 * (runChild).
 */
export function runRespawned(args: string[]): void {
  const execve = (process as { execve?: Execve }).execve
  if (typeof execve !== 'function') return runChild(args)
  try {
    execve.call(process, process.execPath, [process.execPath, ...args], serveEnv(process.env))
  } catch (e) {
    process.stderr.write(`error: could not start ${process.execPath}: ${(e as Error).message}\n`)
    process.exitCode = 1
  }
}

/**
 * Runs node with `args` as a child and mirrors it: its exit code, or the signal that killed it.
 * The child gets its own process group, so a Ctrl-C at the terminal reaches it once, through this
 * process, not twice. An IPC channel tells the child when this process is gone, even by SIGKILL.
 */
function runChild(args: string[]): void {
  const child = spawn(process.execPath, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...serveEnv(process.env), [SUPERVISOR_ENV]: String(process.pid) },
  })
  const forward = (signal: NodeJS.Signals) => {
    child.kill(signal)
  }
  const stopForwarding = () => {
    for (const signal of FORWARDED) process.off(signal, forward)
  }
  for (const signal of FORWARDED) process.on(signal, forward)
  child.once('error', (e) => {
    stopForwarding()
    process.stderr.write(`error: could not start ${process.execPath}: ${e.message}\n`)
    process.exitCode = 1
  })
  child.once('exit', (code, signal) => {
    stopForwarding()
    if (signal) process.kill(process.pid, signal)
    else process.exitCode = code ?? 1
  })
}
