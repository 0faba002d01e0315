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
