import pino, { type Logger } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level?: string
  /** where lines go; defaults to stdout, written asynchronously so logging never blocks a request */
  destination?: pino.DestinationStream
}

/**
 * Secrets are kept out by construction (nothing secret is ever put in a log object); the redact list is
 * a second fence for the header names that carry them.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const destination = opts.destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 })
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'proxy' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['headers.authorization', 'headers["api-key"]', 'headers["x-api-key"]', '*.secret', '*.apiKey'], censor: '[redacted]' },
    },
    destination,
  )
}

export const silentLogger = (): Logger => pino({ level: 'silent' })
