import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeAzure, type FakeAzure } from '../../fakes/azure-upstream.js'
import { cli, tempDataDir } from '../../helpers/proxy.js'

const GOOD = 'aaaabbbbccccddddeeeeffff00001111'
const BAD = 'ffffeeeeddddccccbbbbaaaa11110000'

describe('proxy providers test (azure: one good key, one bad)', () => {
  const data = tempDataDir()
  let fake: FakeAzure

  beforeAll(async () => {
    fake = await startFakeAzure({ keys: [GOOD] })
    expect((await cli(data.dir, ['providers', 'add', 'az', '--type', 'azure', '--base-url', fake.baseUrl])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'az', '--label', 'good'], { stdin: GOOD })).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'az', '--label', 'bad'], { stdin: BAD })).code).toBe(0)
  })
  afterAll(async () => {
    await fake.close()
    data.cleanup()
  })

  it('reports both keys, exits non-zero, and never prints a secret', async () => {
    const before = fake.requests.length
    const res = await cli(data.dir, ['providers', 'test', 'az'])
    expect(res.code).toBe(1)
    expect(res.stdout).toContain("Provider 'az' (azure), tested by listing models:")
    expect(res.stdout).toMatch(/good\s+ok\s+\d+ ms\s+1 model/)
    expect(res.stdout).toMatch(/bad\s+error 401\s+\d+ ms\s+Provider 'az' rejected the proxy's upstream key \(401\)/)
    expect(res.stderr).toContain("1 of 2 key(s) of provider 'az' failed.")
    for (const text of [res.stdout, res.stderr]) {
      expect(text).not.toContain(GOOD)
      expect(text).not.toContain(BAD)
    }
    const sent = fake.requests.slice(before)
    expect(sent.map((r) => [r.method, r.path, r.headers['api-key']])).toEqual([
      ['GET', '/openai/models?api-version=2024-10-21', GOOD],
      ['GET', '/openai/models?api-version=2024-10-21', BAD],
    ])
  })

  it('prints the same report as JSON', async () => {
    const res = await cli(data.dir, ['providers', 'test', 'az', '--json'])
    expect(res.code).toBe(1)
    const report = JSON.parse(res.stdout)
    expect(report).toMatchObject({ provider: 'az', type: 'azure', probe: { kind: 'models' } })
    expect(report.results).toEqual([
      { key: 'good', ok: true, latencyMs: expect.any(Number), detail: '1 model' },
      { key: 'bad', ok: false, latencyMs: expect.any(Number), status: 502, code: 'upstream_auth_failed', upstreamStatus: 401, message: expect.stringContaining('(401)') },
    ])
  })

  it('with --model sends a 1-token chat to that deployment instead', async () => {
    const before = fake.requests.length
    const res = await cli(data.dir, ['providers', 'test', 'az', '--model', 'my-gpt4o', '--json'])
    expect(res.code).toBe(1)
    expect(JSON.parse(res.stdout).probe).toEqual({ kind: 'chat', model: 'my-gpt4o' })
    const sent = fake.requests.slice(before)
    expect(sent).toHaveLength(2)
    expect(sent[0]).toMatchObject({ method: 'POST', path: '/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21', body: { max_tokens: 1, stream: false } })
  })

  it('exits 0 once every key works', async () => {
    fake.validKeys.add(BAD)
    try {
      const res = await cli(data.dir, ['providers', 'test', 'az'])
      expect(res.code).toBe(0)
      expect(res.stdout.match(/\bok\b/g)).toHaveLength(2)
    } finally {
      fake.validKeys.delete(BAD)
    }
  })

  it('names an unknown provider', async () => {
    const res = await cli(data.dir, ['providers', 'test', 'nope'])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain("No provider named 'nope'")
  })
})
