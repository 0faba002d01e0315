/**
 * Answers from the cache: the stored body as it first went out (JSON, or the stream's events in their
 * order with the API's end marker), and the request record filled in as a hit. A hit costs no tokens:
 * its usage is zero for limits, quotas and budgets, and what it saved is kept beside it.
 */
import type { ServerResponse } from 'node:http'
import type { RequestRecord } from '../../telemetry/request-record.js'
import type { CacheLookup } from './response-cache.js'
import type { CachedAnswer } from './store.js'

const NO_USAGE = Object.freeze({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 })

/** Marks the record and the answer's headers with what the cache did (x-proxy-cache: hit|miss|bypass). */
export function noteCacheResult(out: Record<string, string>, record: RequestRecord, lookup: CacheLookup): void {
  out['x-proxy-cache'] = lookup.result
  record.cache = lookup.result
}

export function writeCachedAnswer(res: ServerResponse, out: Record<string, string>, record: RequestRecord, answer: CachedAnswer, started: number): void {
  record.provider = answer.provider
  record.upstreamModel = answer.upstreamModel
  record.key = null
  record.stream = answer.kind === 'sse'
  record.usage = { ...NO_USAGE }
  record.cacheSaved = answer.usage
  // content capture keeps a JSON hit's answer as it keeps any other (a replayed stream: its request only)
  if (record.capture && answer.kind === 'json') record.capture.response = JSON.parse(answer.body)
  out['x-proxy-provider'] = answer.provider
  out['x-proxy-model'] = answer.upstreamModel
  out['x-proxy-attempts'] = '0'
  if (answer.kind === 'sse') {
    out['content-type'] = 'text/event-stream; charset=utf-8'
    out['cache-control'] = 'no-cache'
  } else {
    out['content-type'] = 'application/json'
  }
  out['content-length'] = String(Buffer.byteLength(answer.body))
  res.writeHead(200, out)
  res.end(answer.body)
  if (answer.kind === 'sse') record.ttftMs = Math.round((performance.now() - started) * 100) / 100
}
