import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOllama, type FakeOllama } from '../../fakes/ollama-upstream.js'
import { cli, tempDataDir } from '../../helpers/proxy.js'

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

describe('proxy providers test (ollama, no key)', () => {
  const data = tempDataDir()
  let fake: FakeOllama

  beforeAll(async () => {
    fake = await startFakeOllama()
    fake.models = ['llama3.2:latest', 'qwen3:8b']
    expect((await cli(data.dir, ['providers', 'add', 'ol', '--type', 'ollama', '--base-url', fake.baseUrl])).code).toBe(0)
    expect((await cli(data.dir, ['providers', 'add', 'down', '--type', 'ollama', '--base-url', `http://127.0.0.1:${await closedPort()}`])).code).toBe(0)
  })
  afterAll(async () => {
    await fake.close()
    data.cleanup()
  })

  it('tests a keyless provider once, by listing its models', async () => {
    const res = await cli(data.dir, ['providers', 'test', 'ol'])
    expect(res).toMatchObject({ code: 0, stderr: '' })
    expect(res.stdout).toMatch(/\(no key\)\s+ok\s+\d+ ms\s+2 models/)
    expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', path: '/api/tags' })
  })

  it('says ollama pull when --model names a model the server lacks', async () => {
    const res = await cli(data.dir, ['providers', 'test', 'ol', '--model', 'mistral:7b'])
    expect(res.code).toBe(1)
    expect(res.stdout).toContain("ollama pull mistral:7b")
  })

  it('reports an unreachable server as a failure', async () => {
    const res = await cli(data.dir, ['providers', 'test', 'down', '--timeout', '3000'])
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(/\(no key\)\s+error 502\s+\d+ ms\s+Could not reach provider 'down'/)
  })
})
