import type { ProxyError } from '../core/errors.js'

/** How one client API writes its answers: stream events, the end of a stream, and errors. */
export interface Shape {
  /** one stream event as SSE text */
  event(value: object): string
  /** written after the last event of a stream that ended well ('' when the API has no end marker) */
  done: string
  /** an error answer in this API's shape: the status it answers with, the body, and headers of its own */
  error(error: ProxyError): { status: number; body: string; headers?: Record<string, string> }
  /** the SSE text that ends a stream after a failure; `last` is the last event written, if any */
  streamError(error: ProxyError, last: object | null): string
}
