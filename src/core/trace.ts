/**
 * What the gateway sees of tracing: a span per upstream attempt. The server's request trace implements
 * it (src/telemetry/tracing); with traces off there is none, and the gateway only checks for it.
 */
import type { AttemptRecord } from './attempt.js'
import type { RouteTarget } from './config.js'

export interface AttemptTrace {
  /** the W3C trace context headers (traceparent, tracestate) that carry this attempt's span upstream */
  readonly headers: Record<string, string>
  /** the attempt is over: its outcome as the gateway recorded it */
  end(attempt: AttemptRecord): void
}

export interface AttemptTracer {
  /** a span for one upstream attempt, a child of the request's span */
  attempt(target: RouteTarget): AttemptTrace
}
