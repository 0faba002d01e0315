import pino, { type Logger } from 'pino'
import { loadPinoPretty } from './pino-pretty.js'

export type { Logger }

export interface LoggerOptions {
  level?: string
  /**
   * where lines go; defaults to stdout, written asynchronously so logging never blocks a request.
   * Any writable works (tests pass an in-memory stream).
   */
  destination?: pino.DestinationStream
  /** human-readable lines (pino-pretty, in-process) instead of JSON; for a terminal */
  pretty?: boolean
}

interface Flushable {
  flush?: (cb?: (err?: Error | null) => void) => void
  flushSync?: () => void
}

const BEARER = /Bearer [^"\\\s]+/g

const destinations = new WeakMap<Logger, Flushable>()
/** What every finished line of a logger passes through before it is written; `scrub` is set once known. */
interface Fence {
  scrub: ((text: string) => string) | null
  apply(line: string): string
}
const fences = new WeakMap<Logger, Fence>()

/**
 * Secrets are kept out by construction: every log object is built field by field from names, labels and
 * numbers, and nothing secret (an upstream key, a client key, the master key) is ever put in one. The
 * fence behind that is the scrubber: once the server knows its upstream secrets, every finished line is
 * checked for them before it is written. Checking the serialized line (one substring search per secret)
 * costs a fraction of walking each log object or of pino's path-based redaction, which is why neither
 * is used: this runs once per request.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const sink = opts.destination ?? stdoutDestination(opts.pretty === true)
  const destination = opts.pretty ? prettyStream(sink) : sink
  const fence: Fence = {
    scrub: null,
    apply(line) {
      // Credentials in an Authorization-style value never reach a line, whatever field carried them.
      const out = line.includes('Bearer ') ? line.replace(BEARER, 'Bearer [redacted]') : line
      return fence.scrub ? fence.scrub(out) : out
    },
  }
  const logger = pino(
    {
      level: opts.level ?? 'info',
      hooks: { streamWrite: (line) => fence.apply(line) },
      base: { service: 'proxy' },
      timestamp: isoTimeOncePerMs(),
    },
    destination,
  )
  destinations.set(logger, sink as Flushable)
  fences.set(logger, fence)
  return logger
}

export type LineLevel = 'info' | 'warn' | 'error'
export type LineFields = Record<string, unknown> & { msg: string }

/**
 * A writer for the one line every request logs, byte for byte what `logger[level](fields, fields.msg)`
 * writes, built with one JSON.stringify of the whole object rather than pino's loop over its keys, which
 * makes garbage for every key and value (docs/performance.md). The line goes through the same fence (Bearer values, scrubbed secrets) to the same stream.
 * `fields` must be a plain object of JSON values with `msg` last; undefined values are left out, as pino
 * does. Loggers not made by createLogger (and their children) are written through pino itself.
 */
export function lineWriter(logger: Logger): (level: LineLevel, fields: LineFields) => void {
  const fence = fences.get(logger)
  if (!fence) return (level, fields) => logger[level](fields, fields.msg)
  const { chindingsSym, timeSym, streamSym } = pino.symbols
  const internals = logger as unknown as Record<symbol, unknown>
  const time = internals[timeSym] as () => string
  const stream = internals[streamSym] as pino.DestinationStream
  const chindings = internals[chindingsSym] as string
  const heads = { info: `{"level":${logger.levels.values.info}`, warn: `{"level":${logger.levels.values.warn}`, error: `{"level":${logger.levels.values.error}` }
  return (level, fields) => {
    // JSON.stringify gives '{…}': the head and pino's fixed fields take the place of its '{'.
    stream.write(fence.apply(`${heads[level]}${time()}${chindings},${JSON.stringify(fields).slice(1)}\n`))
  }
}

/** pino's isoTime, formatted once per millisecond: under load several lines share one (docs/performance.md). */
function isoTimeOncePerMs(): () => string {
  let lastMs = -1
  let last = ''
  return () => {
    const now = Date.now()
    if (now !== lastMs) {
      lastMs = now
      last = `,"time":"${new Date(now).toISOString()}"`
    }
    return last
  }
}

/**
 * Makes a logger (and its children) pass every line through `scrub` before it is written (for example:
 * replace the upstream key secrets of the current config). Loggers not made by createLogger are left alone.
 */
export function setLogScrubber(logger: Logger, scrub: (text: string) => string): void {
  const fence = fences.get(logger)
  if (fence) fence.scrub = scrub
}

/**
 * Stdout, written asynchronously. JSON lines are gathered here and handed to pino's destination
 * (sonic-boom) about 16 KiB at a time, and at least once a second, so a quiet server's lines do not wait
 * for the batch to fill; a terminal gets every line at once. Each hand-over wakes a thread of libuv's
 * pool, so fewer is better; sonic-boom's own minLength would re-measure one growing string on every
 * write (docs/performance.md).
 */
function stdoutDestination(interactive: boolean): pino.DestinationStream {
  // 256 KiB a write: with one write in flight, the 16 KiB default fell behind a flood of short
  // requests (docs/performance.md). Past 64 MB of backlog (stdout stuck) lines are dropped.
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0, maxWrite: 256 * 1024, maxLength: 64 * 1024 * 1024 })
  if (interactive) return dest
  return batched(dest, 16 * 1024)
}

function batched(dest: ReturnType<typeof pino.destination>, batchChars: number): pino.DestinationStream & Flushable {
  let parts: string[] = []
  let size = 0
  const drain = () => {
    if (parts.length === 0) return
    const text = parts.length === 1 ? parts[0]! : parts.join('')
    parts = []
    size = 0
    dest.write(text)
  }
  const timer = setInterval(() => {
    try {
      drain()
      dest.flush()
    } catch {
      // not open yet, or closing
    }
  }, 1000)
  timer.unref()
  return {
    write(line: string) {
      parts.push(line)
      size += line.length
      if (size >= batchChars) drain()
    },
    flush(cb?: (err?: Error | null) => void) {
      drain()
      dest.flush(cb)
    },
    flushSync() {
      drain()
      dest.flushSync()
    },
  }
}

/**
 * Pretty lines for a terminal, formatted in-process and written to the same asynchronous destination,
 * so `flushLogger` still drains everything on shutdown (no worker thread, no transport to wait for).
 */
function prettyStream(sink: pino.DestinationStream): pino.DestinationStream {
  // Loaded only for a terminal: a server writing JSON lines does not carry it (about 10 MB of RSS).
  const { prettyFactory } = loadPinoPretty()
  const pretty = prettyFactory({
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // request lines lead with a readable summary; the fields it shows are not repeated after it
    ignore: 'pid,hostname,service,method,path,status,ms,upstream_ms,ttft_ms',
    singleLine: true,
    messageFormat: (log, messageKey) => {
      const msg = String(log[messageKey] ?? '')
      if (msg !== 'request') return msg
      const ttft = typeof log.ttft_ms === 'number' ? `, first chunk ${log.ttft_ms} ms` : ''
      const upstream = typeof log.upstream_ms === 'number' ? `, upstream ${log.upstream_ms} ms` : ''
      return `${String(log.method)} ${String(log.path)} ${String(log.status)} in ${String(log.ms)} ms${upstream}${ttft}`
    },
  })
  return {
    write(line: string) {
      sink.write(pretty(line))
    },
  }
}

/** Writes out whatever the asynchronous destination still holds; call once on shutdown. */
export async function flushLogger(logger: Logger): Promise<void> {
  const sink = destinations.get(logger)
  await new Promise<void>((resolve) => {
    if (sink?.flush) {
      try {
        sink.flush(() => resolve())
        return
      } catch {
        // sonic-boom throws when not ready yet; fall through to the synchronous flush
      }
    }
    resolve()
  })
  try {
    sink?.flushSync?.()
  } catch {
    // nothing left to write, or the destination is not ready (never opened)
  }
}

export const silentLogger = (): Logger => pino({ level: 'silent' })
