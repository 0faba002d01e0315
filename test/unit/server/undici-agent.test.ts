/**
 * src/server/undici-agent.ts takes undici's Agent from lib/dispatcher/agent.js, not the package's index
 * (see there why). This fails when a release of undici moves the class or makes it another one.
 */
import { createRequire } from 'node:module'
import { Agent as FromIndex } from 'undici'
import { describe, expect, it } from 'vitest'
import { Agent } from '../../../src/server/undici-agent.js'

describe("undici's Agent from its own module", () => {
  it('is the very class the package exports', () => {
    expect(Agent).toBe(FromIndex)
    expect(createRequire(import.meta.url)('undici/lib/dispatcher/agent.js')).toBe(FromIndex)
  })

  it('dispatches a request like the one from the index', async () => {
    const { createServer } = await import('node:http')
    const server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const agent = new Agent({ connections: 1 })
    try {
      const { port } = server.address() as { port: number }
      const res = await agent.request({ origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET' })
      expect(res.statusCode).toBe(200)
      expect(await res.body.text()).toBe('ok')
    } finally {
      await agent.close()
      server.close()
    }
  })
})
