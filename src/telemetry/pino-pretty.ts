import { createRequire } from 'node:module'
import type PinoPretty from 'pino-pretty'

/**
 * pino-pretty, required synchronously when a terminal logger is made, so a server writing JSON lines never
 * loads it. A module of its own because the executable's bundle swaps it for a bundled require (build/sea/).
 */
export function loadPinoPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty
}
