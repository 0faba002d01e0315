/**
 * A tiny Messages endpoint on loopback that serves what a test hands it (a JSON answer, an error, or stream
 * events as SSE, the way the server will write them), with the official Anthropic SDK pointed at it: the
 * translators' output is judged by the client that Claude Code itself is built on.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import Anthropic from '@anthropic-ai/sdk'

export type Served =
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'events'; events: AsyncIterable<{ type: string }> | Iterable<{ type: string }> }

export interface SdkHarness {
  client: Anthropic
  /** the bodies the SDK sent, in order */
  requests: Array<Record<string, unknown>>
  close(): Promise<void>
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = ''
  for await (const piece of req) text += piece
  return JSON.parse(text) as Record<string, unknown>
}

/** Serves `answer(body)` for POST /v1/messages; the SDK does not retry, so every answer is seen once. */
export async function startSdkHarness(answer: (body: Record<string, unknown>) => Served): Promise<SdkHarness> {
  const requests: Array<Record<string, unknown>> = []
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req)
      requests.push(body)
      const served = answer(body)
      if (served.kind === 'json') {
        res.writeHead(served.status ?? 200, { 'content-type': 'application/json', ...served.headers })
        res.end(JSON.stringify(served.body))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      for await (const event of served.events) res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
      res.end()
    })().catch((err: unknown) => {
      res.destroy(err as Error)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const client = new Anthropic({ baseURL: `http://127.0.0.1:${port}`, apiKey: 'x', maxRetries: 0 })
  return {
    client,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
