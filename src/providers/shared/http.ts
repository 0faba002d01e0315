import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import type { CallContext } from '../types.js'
import { attachRawJson } from '../../core/raw-json.js'
import type { SignalLike } from '../../core/signal-like.js'
import { UpstreamBody } from './upstream-body.js'
import { parseErrorBody, upstreamHttpError, upstreamNetworkError, withoutKey } from './upstream-error.js'

export interface UpstreamCall {
  dispatcher: Dispatcher
  provider: string
  url: string
  headers: Record<string, string>
  body?: unknown
  method?: 'GET' | 'POST'
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
    headers: call.body === undefined ? call.headers : { 'content-type': 'application/json', ...call.headers },
    body: call.body === undefined ? undefined : JSON.stringify(call.body),
    headersTimeout: call.ctx.timeouts.firstByteMs,
    bodyTimeout: call.ctx.timeouts.totalMs,
  }
}

/**
 * Ties the call's signal to one dispatched exchange: an abort (client gone, timeout) aborts it once
 * undici hands over its controller. `detach()` when the exchange is over.
 */
function abortLink(signal: SignalLike) {
  let controller: Dispatcher.DispatchController | null = null
  const onAbort = () => controller?.abort(signal.reason as Error)
  signal.addEventListener('abort', onAbort, { once: true })
  return {
    attach(c: Dispatcher.DispatchController) {
      controller = c
      if (signal.aborted) c.abort(signal.reason as Error)
    },
    detach: () => signal.removeEventListener('abort', onAbort),
  }
}

/** Starts the exchange; a dispatch that throws at once is reported like a network failure. */
function dispatch(call: UpstreamCall, handler: Dispatcher.DispatchHandler, link: { detach(): void }, reject: (err: unknown) => void): void {
  try {
    call.dispatcher.dispatch(dispatchOptions(call), handler)
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
    const link = abortLink(signal)
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
 * undici's dispatch with a handler that only collects the bytes: request() would wrap the answer in a
 * Readable stream and the signal in its own listeners, about a tenth of the CPU of a proxied request.
 */
export function fetchJson<T>(call: UpstreamCall): Promise<T> {
  const { ctx, provider } = call
  const signal = ctx.signal
  if (signal.aborted) return Promise.reject(upstreamNetworkError(provider, signal.reason, signal))
  return new Promise<T>((resolve, reject) => {
    const link = abortLink(signal)
    let status = 0
    let retryAfter: string | string[] | undefined
    const chunks: Buffer[] = []
    let size = 0
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        link.attach(c)
      },
      onResponseStart(_c, statusCode, headers) {
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
