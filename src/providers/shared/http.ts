import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import type { CallContext } from '../types.js'
import { attachRawJson } from '../../core/raw-json.js'
import { requestJson } from '../../core/request-bytes.js'
import { UpstreamBody } from './upstream-body.js'
import { parseErrorBody, upstreamHttpError, upstreamNetworkError, upstreamTimeout, withoutKey } from './upstream-error.js'

export interface UpstreamCall {
  dispatcher: Dispatcher
  provider: string
  url: string
  headers: Record<string, string>
  body?: unknown
  method?: 'GET' | 'POST' | 'DELETE'
  ctx: CallContext
  /** fetchJson: keep the answer's bytes beside the parsed object (core/raw-json.ts), for answers passed through unchanged */
  keepRaw?: boolean
}

export interface UpstreamResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  body: UpstreamBody
}

/** undici dispatch options for a call: origin and path split by hand (no URL object per request). */
function dispatchOptions(call: UpstreamCall): Dispatcher.DispatchOptions {
  const split = call.url.indexOf('/', call.url.indexOf('//') + 2)
  return {
    origin: split === -1 ? call.url : call.url.slice(0, split),
    path: split === -1 ? '/' : call.url.slice(split),
    method: call.method ?? 'POST',
    headers: withTrace(call.body === undefined || 'content-type' in call.headers ? call.headers : { 'content-type': 'application/json', ...call.headers }, call.ctx.traceHeaders),
    body: call.body === undefined ? undefined : requestJson(call.body),
    // undici's own timeouts are off: see exchangeLink for why, and for what takes their place
    headersTimeout: 0,
    bodyTimeout: 0,
  }
}

/** Every upstream request of an attempt carries its span's trace context (a copy: the adapter's headers object is reused). */
function withTrace(headers: Record<string, string>, trace: Record<string, string> | undefined): Record<string, string> {
  return trace ? { ...headers, ...trace } : headers
}

interface ExchangeLink {
  attach(c: Dispatcher.DispatchController): void
  /** the response headers arrived: the first-byte timer is over */
  answered(): void
  /** the exchange is over, however it ended */
  detach(): void
}

/**
 * Ties one dispatched exchange to its limits: the call's signal (client gone, the attempt's total time)
 * and the first-byte timeout, which aborts the exchange when no response headers arrived in
 * `timeouts.firstByteMs`. An abort before undici hands over its controller is applied when it does.
 *
 * The first-byte timer is a plain Node timer, cleared the moment the headers arrive, instead of undici's
 * headersTimeout and bodyTimeout: cleared "fast timers" linger until undici's next sweep, long enough to
 * be promoted, and bring full GCs closer (docs/performance.md). Nothing is lost: every caller's signal
 * bounds the whole exchange (the gateway's attempt timer, the CLI probe's AbortSignal.timeout).
 */
function exchangeLink(call: UpstreamCall): ExchangeLink {
  const signal = call.ctx.signal
  let controller: Dispatcher.DispatchController | null = null
  // the first cut wins (the client leaving, the attempt's time, or the first-byte timer)
  let cut: { reason: unknown } | null = null
  const abort = (reason: unknown) => {
    if (cut) return
    cut = { reason }
    controller?.abort(reason as Error)
  }
  const onAbort = () => abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  const firstByteMs = call.ctx.timeouts.firstByteMs
  let timer: NodeJS.Timeout | null = null
  if (firstByteMs > 0) {
    timer = setTimeout(() => abort(upstreamTimeout(call.provider, 'first_byte')), firstByteMs)
    timer.unref()
  }
  const answered = () => {
    if (timer === null) return
    clearTimeout(timer)
    timer = null
  }
  return {
    attach(c) {
      controller = c
      // the callers reject an already aborted signal before dispatching, so a cut here came later
      if (cut) c.abort(cut.reason as Error)
    },
    answered,
    detach() {
      answered()
      signal.removeEventListener('abort', onAbort)
    },
  }
}

/**
 * Starts the exchange. The body is encoded first, on its own: a body that cannot be encoded is the
 * proxy's failure (or the client's input), never the upstream's. A dispatch that throws at once is
 * reported like a network failure.
 */
function dispatch(call: UpstreamCall, handler: Dispatcher.DispatchHandler, link: { detach(): void }, reject: (err: unknown) => void): void {
  let options: Dispatcher.DispatchOptions
  try {
    options = dispatchOptions(call)
  } catch (err) {
    link.detach()
    reject(err)
    return
  }
  try {
    call.dispatcher.dispatch(options, handler)
  } catch (err) {
    link.detach()
    reject(upstreamNetworkError(call.provider, err, call.ctx.signal))
  }
}

function httpError(call: UpstreamCall, status: number, text: string, retryAfter: string | string[] | undefined) {
  const details = parseErrorBody(text)
  if (details.message) details.message = withoutKey(details.message, call.ctx.apiKey)
  return upstreamHttpError(call.provider, status, details, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter)
}

/**
 * One upstream HTTP exchange up to its headers. A non-2xx answer is read and thrown as a ProxyError;
 * a 2xx answer is returned with its body unread (an UpstreamBody), so streams stay streams.
 */
export function callUpstream(call: UpstreamCall): Promise<UpstreamResponse> {
  const { ctx, provider } = call
  const signal = ctx.signal
  if (signal.aborted) return Promise.reject(upstreamNetworkError(provider, signal.reason, signal))
  return new Promise<UpstreamResponse>((resolve, reject) => {
    const body = new UpstreamBody()
    const link = exchangeLink(call)
    let answered = false
    let status = 0
    let retryAfter: string | string[] | undefined
    let errorChunks: Buffer[] | null = null
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        body.attach(c)
        link.attach(c)
      },
      onResponseStart(_c, statusCode, headers) {
        link.answered()
        status = statusCode
        if (statusCode >= 200 && statusCode < 300) {
          answered = true
          resolve({ statusCode, headers, body })
          return
        }
        retryAfter = headers['retry-after']
        errorChunks = []
      },
      onResponseData(_c, chunk) {
        if (errorChunks) errorChunks.push(chunk)
        else body.push(chunk)
      },
      onResponseEnd() {
        link.detach()
        if (errorChunks) reject(httpError(call, status, Buffer.concat(errorChunks).toString('utf8'), retryAfter))
        else body.end()
      },
      onResponseError(_c, err) {
        link.detach()
        if (answered) body.fail(err)
        // the status alone still says what failed when its body could not be read
        else if (errorChunks) reject(httpError(call, status, '', retryAfter))
        else reject(upstreamNetworkError(provider, err, signal))
      },
    }
    dispatch(call, handler, link, reject)
  })
}

/**
 * One whole JSON exchange: the request, the answer read to its end and parsed. A non-2xx answer is
 * thrown as a ProxyError, as callUpstream does. Every non-streaming call goes through here, so it uses
 * undici's dispatch with a handler that only collects the bytes: request()'s Readable body and signal
 * listeners were a noticeable share of a proxied request's CPU (docs/performance.md).
 */
export function fetchJson<T>(call: UpstreamCall): Promise<T> {
  const { ctx, provider } = call
  const signal = ctx.signal
  if (signal.aborted) return Promise.reject(upstreamNetworkError(provider, signal.reason, signal))
  return new Promise<T>((resolve, reject) => {
    const link = exchangeLink(call)
    let status = 0
    let retryAfter: string | string[] | undefined
    const chunks: Buffer[] = []
    let size = 0
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        link.attach(c)
      },
      onResponseStart(_c, statusCode, headers) {
        link.answered()
        status = statusCode
        retryAfter = headers['retry-after']
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk)
        size += chunk.length
      },
      onResponseEnd() {
        link.detach()
        const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
        const text = raw.toString('utf8')
        if (status < 200 || status >= 300) {
          reject(httpError(call, status, text, retryAfter))
          return
        }
        try {
          const value = JSON.parse(text) as T
          if (call.keepRaw) attachRawJson(value, raw)
          resolve(value)
        } catch (err) {
          reject(upstreamNetworkError(provider, err, signal))
        }
      },
      onResponseError(_c, err) {
        link.detach()
        reject(upstreamNetworkError(provider, err, signal))
      },
    }
    dispatch(call, handler, link, reject)
  })
}

export async function readJson<T>(res: UpstreamResponse, provider: string, ctx: CallContext): Promise<T> {
  try {
    return JSON.parse(await res.body.text()) as T
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  }
}

/** Joins a base URL and a path without doubling or dropping the slash between them. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '')
}
