/**
 * The request path's view of traces. Nothing here loads OpenTelemetry: the server holds a RequestTracer
 * only when traces are on (start.ts imports otel-tracer.ts then), and otherwise every hook is one check
 * of an absent field.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { AttemptTracer } from '../../core/trace.js'
import type { RequestRecord } from '../request-record.js'

/** One request's server span; the gateway's attempts become its children. */
export interface RequestTrace extends AttemptTracer {
  /** 32 hex digits: the client's trace when it sent a traceparent, else a new one */
  readonly traceId: string
  /** an event on the request span, e.g. the limits' admission */
  event(name: string, attributes?: Record<string, string | number | boolean>): void
  /** a whole answer: the response model, id and finish reasons are read from it */
  answer(value: object): void
  /** one event of a stream on its way to the client, read like an answer */
  chunk(event: object): void
  /** the first byte of the answer is going out to the client */
  firstByte(): void
  /** the request is over; the span takes its attributes from the record and ends */
  end(record: RequestRecord): void
}

export interface RequestTracer {
  /** a trace for one model call; a W3C `traceparent` among the headers makes it a child of the client's */
  start(method: string, path: string, headers: IncomingHttpHeaders): RequestTrace
  /** ends export: what is queued is sent (within a bounded time), then the exporter closes */
  shutdown(): Promise<void>
}
