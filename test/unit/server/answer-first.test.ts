import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { hashClientKey } from '../../../src/core/ids.js'
import type { Gateway, Served } from '../../../src/gateway/gateway.js'
import { chatEndpoints } from '../../../src/server/chat/endpoints.js'
import { postHandler } from '../../../src/server/lifecycle.js'
import type { RequestRecord } from '../../../src/telemetry/request-record.js'
import { client, snapshot } from '../../limits/fixtures.js'

const KEY = 'sk-proxy-answerfirsttestkey0000'

/**
 * The accounting of a request (limits settled, log line, metrics, audit) runs after its answer was
 * handed to the socket: the client does not wait for it. Checked from inside requestDone, which sees
 * whether the response it accounts for has already ended.
 */
describe('the request lifecycle: answer first, then account', () => {
  let server: Server | null = null
  afterEach(async () => {
    await new Promise((r) => server?.close(r))
    server = null
  })

  async function start(chat: () => Promise<Served<unknown>>) {
    const seen: Array<{ status: number; ended: boolean }> = []
    let current: ServerResponse | null = null
    const snap = { ...snapshot([]), clientsByHash: new Map([[hashClientKey(KEY), client(1, { name: 'app' })]]) }
    const post = postHandler(
      {
        config: () => snap,
        maxBodyBytes: 1 << 20,
        telemetry: { requestDone: (r: RequestRecord) => seen.push({ status: r.status, ended: current?.writableEnded ?? false }) },
      },
      new Map(chatEndpoints({ chat } as unknown as Gateway)),
    )
    server = createServer((req, res) => {
      current = res
      if (!post(req, res)) res.writeHead(404).end()
    })
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`
    return { seen, url }
  }

  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })

  it('writes a success before it is accounted for', async () => {
    const answer = { id: 'chatcmpl-1', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }
    const { seen, url } = await start(async () => ({ value: answer, provider: 'p', upstreamModel: 'um', key: 'k', attempts: [] }))
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual(answer)
    expect(seen).toEqual([{ status: 200, ended: true }])
  })

  it('writes an error (refused key, failed upstream) before it is accounted for', async () => {
    const { seen, url } = await start(async () => {
      throw new Error('upstream exploded')
    })
    const refused = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer sk-proxy-wrong', 'content-type': 'application/json' }, body })
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key')
    const failed = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body })
    expect(failed.status).toBe(500)
    await failed.text()
    expect(seen).toEqual([
      { status: 401, ended: true },
      { status: 500, ended: true },
    ])
  })
})
