/**
 * `proxy providers set`: a provider's base URL and settings change in place (keys and routes stay), a bad
 * value changes nothing, and a running server sends the next request to the new base URL without any
 * route being removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import OpenAI from 'openai'
import type { RunningProxy } from '../../src/server/start.js'
import { chatCompletion, startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, eventually, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

interface Listed {
  name: string
  type: string
  baseUrl: string | null
  settings: Record<string, unknown>
  keys: number
}

const listed = async (dir: string, name: string): Promise<Listed> => {
  const res = await cli(dir, ['providers', 'ls', '--json'])
  return (JSON.parse(res.stdout) as Listed[]).find((p) => p.name === name)!
}

describe('proxy providers set', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  beforeAll(async () => {
    expect((await cli(data.dir, ['providers', 'add', 'local', '--type', 'openai-compatible', '--base-url', 'http://127.0.0.1:1234/v1', '--setting', 'headers.X-Org=acme', '--setting', 'stream_usage=false'])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'local', '--label', 'main'], { stdin: 'sk-local' })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'local-model', '--target', 'local/some-model'])).code).toBe(0)
  })

  it('changes the base URL and merges settings, keeping keys and routes', async () => {
    const res = await cli(data.dir, ['providers', 'set', 'local', '--base-url', 'http://10.0.0.7:1234/v1', '--setting', 'headers.X-Team=ml', '--setting', 'timeout_ms=5000'])
    expect(res).toMatchObject({ code: 0, stderr: '' })
    expect(res.stdout).toContain("Updated provider 'local' (openai-compatible, http://10.0.0.7:1234/v1;")
    expect(res.stdout).toContain('within a second')
    expect(await listed(data.dir, 'local')).toMatchObject({
      baseUrl: 'http://10.0.0.7:1234/v1',
      keys: 1,
      settings: { headers: { 'X-Org': 'acme', 'X-Team': 'ml' }, stream_usage: false, timeout_ms: 5000 },
    })
    const routes = JSON.parse((await cli(data.dir, ['models', 'ls', '--json'])).stdout) as Array<{ model: string }>
    expect(routes.map((r) => r.model)).toEqual(['local-model'])
  })

  it('removes settings with --unset-setting, a header on its own or a whole setting', async () => {
    const res = await cli(data.dir, ['providers', 'set', 'local', '--unset-setting', 'headers.X-Org', '--unset-setting', 'timeout_ms', '--json'])
    expect(res.code).toBe(0)
    expect((JSON.parse(res.stdout) as Listed).settings).toEqual({ headers: { 'X-Team': 'ml' }, stream_usage: false })
    await cli(data.dir, ['providers', 'set', 'local', '--unset-setting', 'headers.X-Team'])
    expect((await listed(data.dir, 'local')).settings).toEqual({ stream_usage: false })
  })

  it("re-applies a preset's base URL and settings over the current ones", async () => {
    const res = await cli(data.dir, ['providers', 'set', 'local', '--preset', 'mistral', '--setting', 'app=x'])
    expect(res).toMatchObject({ code: 0, stderr: '' })
    expect(await listed(data.dir, 'local')).toMatchObject({ baseUrl: 'https://api.mistral.ai/v1', settings: { preset: 'mistral', stream_usage: false, app: 'x' } })
    // openrouter's short names become its headers, with --preset and later without it
    await cli(data.dir, ['providers', 'set', 'local', '--preset', 'openrouter', '--base-url', 'http://127.0.0.1:9/v1'])
    await cli(data.dir, ['providers', 'set', 'local', '--setting', 'site_url=https://my.app'])
    expect(await listed(data.dir, 'local')).toMatchObject({ baseUrl: 'http://127.0.0.1:9/v1', settings: { preset: 'openrouter', headers: { 'HTTP-Referer': 'https://my.app' } } })
  })

  it('refuses bad values with a message and changes nothing', async () => {
    const before = await listed(data.dir, 'local')
    const cases: Array<[string[], RegExp]> = [
      [['providers', 'set', 'local'], /Nothing to change: give --base-url/],
      [['providers', 'set', 'local', '--base-url', 'not a url'], /--base-url 'not a url' is not a URL/],
      [['providers', 'set', 'local', '--base-url', 'ftp://host/v1'], /must be http:\/\/ or https:\/\//],
      [['providers', 'set', 'local', '--setting', 'novalue'], /--setting takes key=value, not 'novalue'/],
      [['providers', 'set', 'local', '--preset', 'grok'], /Unknown preset 'grok'/],
      [['providers', 'set', 'local', '--setting', 'a=1', '--unset-setting', 'headers.X-None'], /no setting 'headers.X-None' to remove \(settings: stream_usage, preset, app, headers.HTTP-Referer, a\)/],
      [['providers', 'set', 'ghost', '--base-url', 'http://127.0.0.1:1/v1'], /No provider named 'ghost'/],
    ]
    for (const [args, message] of cases) {
      const res = await cli(data.dir, args)
      expect(res.code, args.join(' ')).not.toBe(0)
      expect(res.stderr).toMatch(message)
      expect(res.stderr).not.toMatch(/\n\s+at /)
    }
    expect(await listed(data.dir, 'local')).toEqual(before)
  })

  it('refuses a preset for a provider that is not openai-compatible', async () => {
    await cli(data.dir, ['providers', 'add', 'plain', '--type', 'openai'])
    const preset = await cli(data.dir, ['providers', 'set', 'plain', '--preset', 'groq'])
    expect(preset.code).toBe(1)
    expect(preset.stderr).toContain('--preset works only with --type openai-compatible')
    expect((await listed(data.dir, 'plain')).baseUrl).toBeNull()
  })
})

describe('proxy providers set on a running server', () => {
  const data = tempDataDir()
  let oldUpstream: FakeUpstream
  let newUpstream: FakeUpstream
  let proxy: RunningProxy
  let openai: OpenAI

  beforeAll(async () => {
    oldUpstream = await startFakeOpenAI()
    newUpstream = await startFakeOpenAI()
    oldUpstream.respond(() => ({ kind: 'json', body: chatCompletion('gpt-4o-mini', 'from the old host') }))
    newUpstream.respond(() => ({ kind: 'json', body: chatCompletion('gpt-4o-mini', 'from the new host') }))
    expect((await cli(data.dir, ['providers', 'add', 'up', '--type', 'openai', '--base-url', oldUpstream.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'up', '--label', 'main'], { stdin: 'sk-upstream' })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'up/gpt-4o-mini'])).code).toBe(0)
    const key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    // the default poll interval of serve, so "within a second" is what a user gets
    proxy = await startTestProxy(data.dir, { reloadPollMs: 250 })
    openai = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    await oldUpstream?.close()
    await newUpstream?.close()
    data.cleanup()
  })

  const ask = async () => (await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).choices[0]!.message.content

  it('sends the next request to the new base URL, with the new header, and no route removed', async () => {
    expect(await ask()).toBe('from the old host')
    expect(oldUpstream.requests).toHaveLength(1)

    const set = await cli(data.dir, ['providers', 'set', 'up', '--base-url', newUpstream.url, '--setting', 'headers.X-Org=acme'])
    expect(set).toMatchObject({ code: 0, stderr: '' })
    const changedAt = Date.now()
    await eventually(ask, (answer) => answer === 'from the new host', 2000)
    expect(Date.now() - changedAt).toBeLessThan(1500)

    expect(newUpstream.requests.at(-1)!.headers['x-org']).toBe('acme')
    expect(newUpstream.requests.at(-1)!.headers.authorization).toBe('Bearer sk-upstream')
    const before = oldUpstream.requests.length
    expect(await ask()).toBe('from the new host')
    expect(oldUpstream.requests).toHaveLength(before)
    const routes = JSON.parse((await cli(data.dir, ['models', 'ls', '--json'])).stdout) as Array<{ model: string }>
    expect(routes.map((r) => r.model)).toEqual(['gpt-4o-mini'])
  })
})
