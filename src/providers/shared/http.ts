import { request, type Dispatcher } from 'undici'
import type { CallContext } from '../types.js'
import { parseErrorBody, upstreamHttpError, upstreamNetworkError, withoutKey } from './upstream-error.js'

export interface UpstreamCall {
  dispatcher: Dispatcher
  provider: string
  url: string
  headers: Record<string, string>
  body?: unknown
  method?: 'GET' | 'POST'
  ctx: CallContext
}

/**
 * One upstream HTTP exchange up to its headers. A non-2xx answer is read and thrown as a ProxyError;
 * a 2xx answer is returned with its body unread, so streams stay streams.
 */
export async function callUpstream(call: UpstreamCall): Promise<Dispatcher.ResponseData> {
  let res: Dispatcher.ResponseData
  try {
    res = await request(call.url, {
      dispatcher: call.dispatcher,
      method: call.method ?? 'POST',
      headers: call.body === undefined ? call.headers : { 'content-type': 'application/json', ...call.headers },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal: call.ctx.signal,
      headersTimeout: call.ctx.timeouts.firstByteMs,
      bodyTimeout: call.ctx.timeouts.totalMs,
    })
  } catch (err) {
    throw upstreamNetworkError(call.provider, err, call.ctx.signal)
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res
  let text = ''
  try {
    text = await res.body.text()
  } catch {
    // the status alone still says what failed
  }
  const retryAfter = res.headers['retry-after']
  const details = parseErrorBody(text)
  if (details.message) details.message = withoutKey(details.message, call.ctx.apiKey)
  throw upstreamHttpError(call.provider, res.statusCode, details, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter)
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
  const split = call.url.indexOf('/', call.url.indexOf('//') + 2)
  const origin = split === -1 ? call.url : call.url.slice(0, split)
  const path = split === -1 ? '/' : call.url.slice(split)
  return new Promise<T>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null
    let status = 0
    let retryAfter: string | undefined
    const chunks: Buffer[] = []
    let size = 0
    const onAbort = () => controller?.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    const done = () => signal.removeEventListener('abort', onAbort)
    const fail = (err: unknown) => {
      done()
      reject(upstreamNetworkError(provider, err, signal))
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c
        if (signal.aborted) c.abort(signal.reason)
      },
      onResponseStart(_c, statusCode, headers) {
        status = statusCode
        const ra = headers['retry-after']
        retryAfter = Array.isArray(ra) ? ra[0] : ra
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk)
        size += chunk.length
      },
      onResponseEnd() {
        done()
        const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8')
        if (status < 200 || status >= 300) {
          const details = parseErrorBody(text)
          if (details.message) details.message = withoutKey(details.message, ctx.apiKey)
          reject(upstreamHttpError(provider, status, details, retryAfter))
          return
        }
        try {
          resolve(JSON.parse(text) as T)
        } catch (err) {
          reject(upstreamNetworkError(provider, err, signal))
        }
      },
      onResponseError(_c, err) {
        fail(err)
      },
    }
    try {
      call.dispatcher.dispatch(
        {
          origin,
          path,
          method: call.method ?? 'POST',
          headers: call.body === undefined ? call.headers : { 'content-type': 'application/json', ...call.headers },
          body: call.body === undefined ? undefined : JSON.stringify(call.body),
          headersTimeout: ctx.timeouts.firstByteMs,
          bodyTimeout: ctx.timeouts.totalMs,
        },
        handler,
      )
    } catch (err) {
      fail(err)
    }
  })
}

export async function readJson<T>(res: Dispatcher.ResponseData, provider: string, ctx: CallContext): Promise<T> {
  try {
    return (await res.body.json()) as T
  } catch (err) {
    throw upstreamNetworkError(provider, err, ctx.signal)
  }
}

/** Joins a base URL and a path without doubling or dropping the slash between them. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '')
}
