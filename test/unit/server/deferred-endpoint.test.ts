import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { hashClientKey } from '../../../src/core/ids.js'
import type { Gateway, Served } from '../../../src/gateway/gateway.js'
import { chatEndpoints } from '../../../src/server/chat/endpoints.js'
import { deferEndpoints, loadOnce, postHandler, type DeferredEndpoint, type Endpoint } from '../../../src/server/lifecycle.js'
import { messagesShape } from '../../../src/server/messages/shape.js'
import { client, snapshot } from '../../limits/fixtures.js'

const KEY = 'sk-proxy-deferredendpointkey000'
const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })
const answer = { id: 'chatcmpl-1', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }

/** An endpoint whose code loads on first use (app.ts loads the Messages and Responses APIs so). */
describe('a deferred endpoint', () => {
  let server: Server | null = null
  afterEach(async () => {
    const open = server
    server = null
    if (open) await new Promise((r) => open.close(r))
  })

  async function start(deferred: DeferredEndpoint) {
    const snap = { ...snapshot([]), clientsByHash: new Map([[hashClientKey(KEY), client(1, { name: 'app' })]]) }
    const post = postHandler({ config: () => snap, maxBodyBytes: 1 << 20, telemetry: { requestDone: () => {} } }, new Map([['/v1/deferred', deferred]]))
    server = createServer((req, res) => {
      if (!post(req, res)) res.writeHead(404).end()
    })
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/deferred`
  }
  const call = (url: string, key = KEY) => fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body })

  it('is loaded once, by its first requests, and then serves every request', async () => {
    let loads = 0
    const [, chat] = chatEndpoints({ chat: async (): Promise<Served<unknown>> => ({ value: answer, provider: 'p', upstreamModel: 'um', key: 'k', attempts: [] }) } as unknown as Gateway)[0]!
    let loaded: Endpoint | null = null
    const url = await start({
      shape: messagesShape,
      load: async () => {
        loads++
        await new Promise((r) => setTimeout(r, 50))
        return (loaded ??= chat)
      },
    })
    // the first requests arrive together, while the code loads
    const first = await Promise.all([call(url), call(url), call(url)])
    expect(first.map((r) => r.status)).toEqual([200, 200, 200])
    expect(await first[0]!.json()).toEqual(answer)
    expect((await call(url)).status).toBe(200)
    // each of the first three asked; later requests use what was loaded
    expect(loads).toBe(3)
  })

  it('answers a load that failed as this request\'s error, in its API\'s shape, and the server goes on', async () => {
    const url = await start({ shape: messagesShape, load: () => Promise.reject(new Error('Cannot find module ./messages/endpoints.js')) })
    const failed = await call(url)
    expect(failed.status).toBe(500)
    const err = (await failed.json()) as { type: string; error: { type: string; message: string } }
    // Anthropic's error body, as the Messages API's clients expect
    expect(err.type).toBe('error')
    expect(err.error.type).toBe('api_error')
    // a refused key: the load fails first, and the answer is still an error in the API's shape, not a crash
    const refused = await call(url, 'sk-proxy-wrong')
    expect(refused.status).toBe(500)
    expect(((await refused.json()) as { type: string }).type).toBe('error')
  })

  it('loads a module once for all its paths, and tries again after a load that failed', async () => {
    const [, chat] = chatEndpoints({ chat: async (): Promise<Served<unknown>> => ({ value: answer, provider: 'p', upstreamModel: 'um', key: 'k', attempts: [] }) } as unknown as Gateway)[0]!
    let loads = 0
    const deferred = deferEndpoints(messagesShape, ['/v1/a', '/v1/b', '/v1/c'], async () => {
      loads++
      if (loads === 1) throw new Error('EMFILE: too many open files')
      return [
        ['/v1/a', chat],
        ['/v1/b', chat],
      ]
    })
    const [a, b, c] = deferred.map(([, d]) => d)
    expect(deferred.map(([path]) => path)).toEqual(['/v1/a', '/v1/b', '/v1/c'])
    expect(a!.shape).toBe(messagesShape)
    await expect(a!.load()).rejects.toThrow('EMFILE')
    // the next request loads again, and both paths share that one load
    expect(await Promise.all([a!.load(), b!.load()])).toEqual([chat, chat])
    expect(loads).toBe(2)
    await expect(c!.load()).rejects.toThrow('does not serve it')
    expect(loads).toBe(2)
  })
})

/** What app.ts loads the h3 routes with, and deferEndpoints its modules. */
describe('loadOnce', () => {
  it('shares one load between the calls made while it runs, and forgets it only when it failed', async () => {
    let loads = 0
    let fail = true
    const load = loadOnce(async () => {
      loads++
      await new Promise((r) => setTimeout(r, 5))
      if (fail) throw new Error(`EMFILE (load ${loads})`)
      return `routes (load ${loads})`
    })
    // three requests arrive while the first load runs: all three get its failure
    const first = await Promise.allSettled([load(), load(), load()])
    expect(first.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.value))).toEqual(['EMFILE (load 1)', 'EMFILE (load 1)', 'EMFILE (load 1)'])
    fail = false
    expect(await Promise.all([load(), load()])).toEqual(['routes (load 2)', 'routes (load 2)'])
    // once loaded, the result is kept even if a later load would fail
    fail = true
    expect(await load()).toBe('routes (load 2)')
    expect(loads).toBe(2)
  })
})
