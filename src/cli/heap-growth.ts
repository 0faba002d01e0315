/**
 * How far V8 lets the old generation grow past what survived the last full GC, for `proxy serve`:
 * 30 % by default, because V8's own sizing let promoted request garbage swing RSS by tens of megabytes
 * with no more live data (docs/performance.md).
 *
 * PROXY_HEAP_GROWING_PERCENT chooses another cap (0: V8's own sizing). Node refuses this V8 flag in
 * NODE_OPTIONS, so the variable is the way to set it for the `proxy` command; a flag given on node's own
 * command line (`node --heap-growing-percent=N …/proxy serve`) is left alone.
 */
import v8 from 'node:v8'
import { CliError } from './context.js'

export const DEFAULT_HEAP_GROWING_PERCENT = 30

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/

/** The V8 flag serve sets, or null when it leaves V8 as started. */
export function heapGrowthFlag(execArgv: readonly string[], setting: string | undefined): string | null {
  if (execArgv.some((arg) => FLAG.test(arg))) return null
  let percent = DEFAULT_HEAP_GROWING_PERCENT
  if (setting !== undefined && setting.trim() !== '') {
    percent = Number(setting)
    if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
      throw new CliError(`PROXY_HEAP_GROWING_PERCENT must be a whole number from 0 (V8's own sizing) to 1000, not '${setting}'.`)
    }
  }
  return percent === 0 ? null : `--heap-growing-percent=${percent}`
}

/**
 * Sets the flag for this process. V8 reads it each time it sizes the heap after a full GC, so setting
 * it at start, before the server takes load, is enough. Returns the flag set, if any.
 */
export function limitHeapGrowth(execArgv: readonly string[], setting: string | undefined): string | null {
  const flag = heapGrowthFlag(execArgv, setting)
  if (flag) v8.setFlagsFromString(flag)
  return flag
}
