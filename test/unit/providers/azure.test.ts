import OpenAI from 'openai'
import { Agent } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { ChatCompletionChunk, ChatRequest } from '../../../src/core/openai-schema.js'
import { AZURE_DEFAULT_API_VERSION, azureDialect, createAzureAdapter } from '../../../src/providers/azure.js'
import type { CallContext, ProviderAdapter } from '../../../src/providers/types.js'
import type { RunningProxy } from '../../../src/server/start.js'
import { AZURE_TEST_KEY, azureContentFilterBody, startFakeAzure, type FakeAzure } from '../../fakes/azure-upstream.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../../helpers/proxy.js'

const ctx = (over: Partial<CallContext> = {}): CallContext => ({
  apiKey: AZURE_TEST_KEY,
  upstreamModel: 'my-gpt4o',
  signal: AbortSignal.timeout(5000),
  requestId: 'req_test',
  timeouts: { firstByteMs: 5000 },
  ...over,
})

const chat = (over: Partial<ChatRequest> = {}): ChatRequest => ({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...over }) as ChatRequest

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const c of stream) out.push(c)
  return out
}

describe('azure URLs, headers and api-version', () => {
  const c = ctx()

  it('puts the deployment in the path and api-version in the query', () => {
    const d = azureDialect('az', 'https://res.openai.azure.com', '2024-10-21')
    expect(d.url('chat/completions', c)).toBe('https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21')
    expect(d.url('completions', c)).toBe('https://res.openai.azure.com/openai/deployments/my-gpt4o/completions?api-version=2024-10-21')
    expect(d.url('embeddings', ctx({ upstreamModel: 'embed-3-small' }))).toBe('https://res.openai.azure.com/openai/deployments/embed-3-small/embeddings?api-version=2024-10-21')
    expect(d.url('models', c)).toBe('https://res.openai.azure.com/openai/models?api-version=2024-10-21')
  })

  it('accepts the resource URL with a trailing slash or /openai, and escapes odd deployment names', () => {
    for (const base of ['https://res.openai.azure.com/', 'https://res.openai.azure.com/openai', 'https://res.openai.azure.com/openai/']) {
      expect(azureDialect('az', base, '2024-06-01').url('chat/completions', ctx({ upstreamModel: 'gpt 4o/x' }))).toBe(
        'https://res.openai.azure.com/openai/deployments/gpt%204o%2Fx/chat/completions?api-version=2024-06-01',
      )
    }
  })

  it("sends the key as api-key, not as a bearer token", () => {
    expect(azureDialect('az', 'https://r', AZURE_DEFAULT_API_VERSION).authHeaders('k')).toEqual({ 'api-key': 'k' })
  })

  it('fails a call clearly when the provider has no base URL', () => {
    expect(() => azureDialect('az', null, '2024-10-21').url('chat/completions', c)).toThrow(expect.objectContaining({ code: 'provider_misconfigured', message: expect.stringContaining('--base-url') }))
  })
})

describe('azure adapter against a fake Azure resource', () => {
  let fake: FakeAzure
  let agent: Agent
  const make = (settings: Record<string, unknown> = {}): ProviderAdapter =>
    createAzureAdapter({ name: 'az', type: 'azure', baseUrl: fake.baseUrl, settings: { headers: { 'X-Team': 'a' }, ...settings } }, { dispatcher: agent })

  beforeAll(async () => {
    fake = await startFakeAzure()
    agent = new Agent()
  })
  afterAll(async () => {
    await agent.close()
    await fake.close()
  })
  beforeEach(() => {
    fake.override = null
    fake.play({ kind: 'text', text: 'Hello from Azure', usage: { prompt: 5, completion: 4 } })
  })

  it('calls the deployment with the default api-version, the api-key header and the OpenAI body', async () => {
    const res = await make().chat(chat({ temperature: 0.3 }), ctx())
    const seen = fake.requests.at(-1)!
    expect(seen.path).toBe('/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21')
    expect(seen.headers['api-key']).toBe(AZURE_TEST_KEY)
    expect(seen.headers.authorization).toBeUndefined()
    expect(seen.headers['x-team']).toBe('a')
    expect(seen.body).toMatchObject({ model: 'my-gpt4o', stream: false, temperature: 0.3, messages: [{ role: 'user', content: 'Hi' }] })
    expect(res.choices[0]!.message.content).toBe('Hello from Azure')
  })

  it('passes Azure-only response fields through', async () => {
    const res = await make().chat(chat(), ctx())
    expect(res.prompt_filter_results).toEqual([expect.objectContaining({ prompt_index: 0, content_filter_results: expect.any(Object) })])
    expect(res.choices[0]!.content_filter_results).toMatchObject({ violence: { filtered: false, severity: 'safe' } })
  })

  it('uses the api_version setting', async () => {
    await make({ api_version: '2024-06-01' }).chat(chat(), ctx())
    expect(fake.requests.at(-1)!.path).toBe('/openai/deployments/my-gpt4o/chat/completions?api-version=2024-06-01')
  })

  it('folds the empty first stream chunk into the next and gives delta-less choices a delta', async () => {
    const chunks: ChatCompletionChunk[] = await collect(await make().chatStream(chat({ stream: true }), ctx()))
    expect(chunks.every((c) => c.id === 'chatcmpl-azure' && c.object === 'chat.completion.chunk')).toBe(true)
    expect(chunks[0]!.prompt_filter_results).toEqual([expect.objectContaining({ prompt_index: 0 })])
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant')
    expect(chunks.filter((c) => c.prompt_filter_results)).toHaveLength(1)
    for (const c of chunks) for (const choice of c.choices) expect(choice.delta).toBeDefined()
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello from Azure')
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 })
    expect(fake.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true })
  })

  it('does not send stream_options to api-versions older than 2024-08-01, nor when stream_usage=false', async () => {
    await collect(await make({ api_version: '2024-02-01' }).chatStream(chat({ stream: true, stream_options: { include_usage: true } }), ctx()))
    expect(fake.requests.at(-1)!.body).not.toHaveProperty('stream_options')
    await collect(await make({ stream_usage: false }).chatStream(chat({ stream: true }), ctx()))
    expect(fake.requests.at(-1)!.body).not.toHaveProperty('stream_options')
    await collect(await make({ api_version: '2024-08-01-preview' }).chatStream(chat({ stream: true }), ctx()))
    expect(fake.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true })
  })

  it('maps a content-filter refusal to a 400 content_filter error with a useful message', async () => {
    fake.override = () => ({ status: 400, body: azureContentFilterBody() })
    const call = make().chat(chat(), ctx())
    await expect(call).rejects.toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      code: 'content_filter',
      param: 'prompt',
      message: expect.stringMatching(/content management policy.*content filter blocked the prompt at provider 'az'/s),
    })
  })

  it('lists the resource models for a key check', async () => {
    expect(await make().listModels!(ctx())).toEqual(['gpt-4o-2024-08-06'])
    expect(fake.requests.at(-1)!).toMatchObject({ method: 'GET', path: '/openai/models?api-version=2024-10-21' })
  })

  it('sends embeddings and legacy completions to their deployment paths', async () => {
    await make().embeddings!({ model: 'e', input: ['a', 'b'] }, ctx({ upstreamModel: 'emb' }))
    expect(fake.requests.at(-1)!.path).toBe('/openai/deployments/emb/embeddings?api-version=2024-10-21')
    await make().completion!({ model: 'c', prompt: 'x' }, ctx({ upstreamModel: 'instruct' })).catch(() => undefined)
    expect(fake.requests.at(-1)!.path).toBe('/openai/deployments/instruct/completions?api-version=2024-10-21')
  })
})

describe('azure content filter through the proxy', () => {
  const data = tempDataDir()
  let fake: FakeAzure
  let proxy: RunningProxy
  let sdk: OpenAI

  beforeAll(async () => {
    fake = await startFakeAzure()
    expect((await cli(data.dir, ['providers', 'add', 'az', '--type', 'azure', '--base-url', fake.baseUrl])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'az'], { stdin: AZURE_TEST_KEY })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o', '--target', 'az/my-gpt4o'])).code).toBe(0)
    const client = await cli(data.dir, ['clients', 'add', 'app'])
    proxy = await startTestProxy(data.dir)
    sdk = new OpenAI({ apiKey: keyFrom(client.stdout), baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    await fake?.close()
    data.cleanup()
  })

  it("reaches an OpenAI SDK client as a BadRequestError with code 'content_filter'", async () => {
    fake.override = () => ({ status: 400, body: azureContentFilterBody() })
    const call = sdk.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'something filtered' }] })
    await expect(call).rejects.toBeInstanceOf(OpenAI.BadRequestError)
    await expect(call).rejects.toMatchObject({ status: 400, code: 'content_filter', type: 'invalid_request_error', message: expect.stringContaining("Azure OpenAI's content filter") })
  })
})
