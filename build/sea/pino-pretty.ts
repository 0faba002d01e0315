/** src/telemetry/pino-pretty.ts in the executable: pino-pretty is in the bundle, evaluated on first use. */
import type PinoPretty from 'pino-pretty'

export function loadPinoPretty(): typeof PinoPretty {
  return require('pino-pretty') as typeof PinoPretty
}
