import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readiness } from './app.js'

const JSON_TYPE = 'application/json;charset=UTF-8'
const HEALTHY = JSON.stringify({ status: 'ok' })

/**
 * GET /health and /readyz on node:http directly: a load balancer asks every few seconds, and a server
 * that has just started should answer them without loading its other routes (app.ts). Returns whether
 * it answered; other methods on these paths go on to the h3 app, which refuses them as it does elsewhere.
 */
export function probeHandler(readiness: () => Readiness): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET') return false
    const url = req.url ?? ''
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (path === '/health') {
      answer(res, 200, HEALTHY)
      return true
    }
    if (path === '/readyz') {
      const r = readiness()
      const status = r.ready ? (r.checks.degraded ? 'degraded' : 'ready') : 'not_ready'
      answer(res, r.ready ? 200 : 503, JSON.stringify({ status, checks: r.checks }))
      return true
    }
    return false
  }
}

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
