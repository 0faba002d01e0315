/**
 * A fault-injecting fake OpenAI upstream on loopback. It answers in OpenAI's wire format (JSON, or SSE
 * ending in `data: [DONE]`) and tells keys apart by their Authorization header, so each key and each
 * provider (one instance per provider) can be given its own faults:
 *
 *   upstream.fail({ key: 'sk-a1', status: 401 })                  // every request with this key
 *   upstream.fail({ status: 429, retryAfter: '1', times: 1 })     // the next request only
 *   upstream.fail({ status: 503, rate: 0.3 })                     // 30% of requests
 *   upstream.fail({ hang: 'before_headers' })                     // never answers
 *   upstream.fail({ hang: 'after_headers' })                      // 200 + headers, then nothing
 *   upstream.fail({ reset: true })                                // destroys the connection
 *   upstream.fail({ disconnectAfter: 2 })                         // streams: 2 chunks, then the socket dies
 *
 * Rules are checked in the order they were added; the first that matches applies. A normal answer
 * names the provider and key that served it: `served by <name> with <key>`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { chatChunks, chatCompletion } from './openai-upstream.js'

export interface Fault {
  /** answer with this HTTP status and an OpenAI-style error body */
  status?: number
  /** Retry-After header value (delta seconds or an HTTP date) */
  retryAfter?: string
  /** wait this long before answering (or before the first chunk of a stream) */
  delayMs?: number
  hang?: 'before_headers' | 'after_headers'
  /** destroy the connection without answering */
  reset?: boolean
  /** streams: send this many chunks, then destroy the connection */
  disconnectAfter?: number
  /** streams: wait between chunks */
  gapMs?: number
}

export interface FaultRule extends Fault {
  /** only requests with this key (the bearer token); any key when absent */
  key?: string
  /** apply to this many matching requests, then retire the rule */
  times?: number
  /** apply to this share of matching requests (0..1) */
  rate?: number
}

export interface FaultRequest {
  method: string
  path: string
  key: string | null
  body: any
  at: number
  /** what was done with it: 'ok' or the fault's description */
  outcome: string
  /** the W3C trace context it carried (traceparent), if any */
  traceparent?: string
}

export interface FaultUpstream {
  name: string
  url: string
  requests: FaultRequest[]
  /** requests received, optionally only those with this key */
  count(key?: string): number
  fail(rule: FaultRule): void
  /** drops every rule */
  heal(): void
  close(): Promise<void>
}

export async function startFaultUpstream(name: string, opts: { random?: () => number } = {}): Promise<FaultUpstream> {
  const random = opts.random ?? Math.random
  const requests: FaultRequest[] = []
  let rules: Array<FaultRule & { left: number }> = []
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t)
        resolve()
      }, ms)
      timers.add(t)
    })

  const pick = (key: string | null): FaultRule | null => {
    for (const rule of rules) {
      if (rule.key !== undefined && rule.key !== key) continue
      if (rule.rate !== undefined && random() >= rule.rate) continue
      if (rule.times !== undefined) {
        rule.left--
        if (rule.left <= 0) rules = rules.filter((r) => r !== rule)
      }
      return rule
    }
    return null
  }

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const auth = req.headers.authorization
    const key = auth?.startsWith('Bearer ') ? auth.slice(7) : null
    const body = raw ? JSON.parse(raw) : undefined
    const rule = pick(key)
    const recorded: FaultRequest = { method: req.method!, path: req.url!, key, body, at: Date.now(), outcome: describe(rule) }
    if (typeof req.headers.traceparent === 'string') recorded.traceparent = req.headers.traceparent
    requests.push(recorded)
    const model = body?.model ?? 'unknown'
    const text = `served by ${name} with ${key ?? 'no key'}`

    if (rule?.delayMs) await sleep(rule.delayMs)
    if (res.destroyed) return
    if (rule?.reset) {
      req.socket.destroy()
      return
    }
    if (rule?.hang === 'before_headers') return
    if (rule?.status) {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (rule.retryAfter) headers['retry-after'] = rule.retryAfter
      res.writeHead(rule.status, headers)
      res.end(JSON.stringify({ error: { message: `injected ${rule.status} from ${name}`, type: rule.status === 429 ? 'rate_limit_error' : 'server_error', param: null, code: null } }))
      return
    }
    if (req.url?.endsWith('/embeddings')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'list', model, data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }], usage: { prompt_tokens: 3, total_tokens: 3 } }))
      return
    }
    if (body?.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.flushHeaders()
      if (rule?.hang === 'after_headers') return
      const events = chatChunks(model, text.split(/(?= )/))
      for (const [i, event] of events.entries()) {
        if (rule?.disconnectAfter !== undefined && i >= rule.disconnectAfter) {
          req.socket.destroy()
          return
        }
        if (res.destroyed) return
        res.write(`data: ${JSON.stringify(event)}\n\n`)
        if (rule?.gapMs) await sleep(rule.gapMs)
      }
      res.end('data: [DONE]\n\n')
      return
    }
    if (rule?.hang === 'after_headers') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.flushHeaders()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(chatCompletion(model, text)))
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    name,
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    count: (key) => (key === undefined ? requests.length : requests.filter((r) => r.key === key).length),
    fail(rule) {
      rules.push({ ...rule, left: rule.times ?? Infinity })
    },
    heal() {
      rules = []
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t)
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

function describe(rule: FaultRule | null): string {
  if (!rule) return 'ok'
  if (rule.reset) return 'reset'
  if (rule.hang) return `hang ${rule.hang}`
  if (rule.status) return `status ${rule.status}`
  if (rule.disconnectAfter !== undefined) return `disconnect after ${rule.disconnectAfter}`
  if (rule.delayMs) return `delay ${rule.delayMs}`
  return 'ok'
}
