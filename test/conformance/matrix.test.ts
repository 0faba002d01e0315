/**
 * The conformance matrix: every ingress API (chat completions, Responses, Messages) against every provider
 * type (openai, openai-compatible, azure, anthropic, ollama, mock) in every scenario below, through one
 * real proxy over loopback with the official SDKs as clients and the fakes speaking each provider's wire.
 *
 * A scenario is one line of LINES: what the upstream answers and what the client asks. The runner is
 * shared: it checks the answer the client got (text, tool calls and their parsed arguments, reasoning and
 * its signature, stop reason, usage), the request the upstream got in its own format (model, image bytes,
 * reasoning parameters, tools, earlier turns, reasoning sent back in a tool loop), the error class and
 * status, and for some lines the proxy's audit row. Each cell makes one upstream call (two for a tool
 * loop): retries are off. A cell that cannot apply is in NOT_APPLICABLE with why; it has no test.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ProviderType } from '../../src/core/provider-types.js'
import { roughCount, Tokenizer } from '../../src/limits/estimate.js'
import type { RunningProxy } from '../../src/server/start.js'
import { startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { startFakeAzure, type FakeAzure } from '../fakes/azure-upstream.js'
import { startFakeOllama, type FakeOllama } from '../fakes/ollama-upstream.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import type { PlayedUsage, Scenario } from '../fakes/scenario.js'
import { cliOk, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'
import { chatClient, messagesClient, responsesClient, TOOLS, type Answer, type Api, type Ask, type Client } from './matrix-clients.js'
import { anthropicDriver, azureDriver, mockDriver, ollamaDriver, openAIDriver, type Answered, type Expected, type ProviderDriver } from './matrix-providers.js'

const WEATHER = { id: 'call_weather_1', name: 'get_weather', args: { city: 'Zürich', days: [1, 2] } }
const TIME = { id: 'call_time_2', name: 'get_time', args: { zone: 'Europe/Zurich' } }
const CITIES = { id: 'call_cities_3', name: 'list_cities', args: {} }
const TEXT = 'Grüße aus Zürich: sonnig, 21 °C, am Abend Gewitter.'
const THOUGHT = 'Der Nutzer fragt nach dem Wetter; ich antworte kurz — mit Temperatur.'
const usage = (prompt: number, completion: number, more: { reasoning?: number; cached?: number } = {}) => ({ prompt, completion, ...more })

interface Line {
  id: string
  /** what the client asks besides the prompt */
  ask: Partial<Pick<Ask, 'stream' | 'tools' | 'image' | 'reasoning' | 'earlier'>>
  /** what the upstream answers */
  play: Scenario
  /** a tool loop: the first answer (a call) goes back with its result, and the upstream answers this */
  then?: Answered
  /** the proxy's audit row must carry the upstream's usage */
  audit?: boolean
}

const LINES: Line[] = [
  { id: 'text', ask: {}, play: { kind: 'text', text: TEXT, usage: usage(11, 7) } },
  { id: 'text, streamed', ask: { stream: true }, play: { kind: 'text', text: TEXT, usage: usage(12, 8) } },
  { id: 'tool call', ask: { tools: 1 }, play: { kind: 'tool_call', ...WEATHER, usage: usage(20, 10) } },
  { id: 'tool call, streamed', ask: { tools: 1, stream: true }, play: { kind: 'tool_call', ...WEATHER, text: 'Ich sehe nach.', usage: usage(21, 11) } },
  { id: 'tool call, streamed in 1-byte pieces', ask: { tools: 1, stream: true }, play: { kind: 'tool_call', ...WEATHER, text: 'Ich sehe nach.', usage: usage(22, 12), pieceSize: 1 } },
  { id: 'tool call without arguments', ask: { tools: 3 }, play: { kind: 'tool_call', ...CITIES, usage: usage(25, 6) } },
  { id: 'tool call without arguments, streamed', ask: { tools: 3, stream: true }, play: { kind: 'tool_call', ...CITIES, usage: usage(26, 7) } },
  { id: 'parallel tool calls', ask: { tools: 2 }, play: { kind: 'tool_call', ...WEATHER, text: 'Ich sehe nach.', parallel: [TIME], usage: usage(30, 20) } },
  { id: 'parallel tool calls, streamed', ask: { tools: 2, stream: true }, play: { kind: 'tool_call', ...WEATHER, parallel: [TIME], usage: usage(31, 21) } },
  { id: 'tool result on the next turn', ask: { tools: 1, earlier: true }, play: { kind: 'text', text: 'Es sind 21 °C und sonnig.', usage: usage(40, 9) } },
  { id: 'image input', ask: { image: true }, play: { kind: 'text', text: 'Ein rotes Rechteck.', usage: usage(90, 5) } },
  { id: 'reasoning', ask: { reasoning: true }, play: { kind: 'text', text: TEXT, reasoning: THOUGHT, usage: usage(15, 40, { reasoning: 25 }) } },
  { id: 'reasoning, streamed', ask: { reasoning: true, stream: true }, play: { kind: 'text', text: TEXT, reasoning: THOUGHT, usage: usage(16, 41, { reasoning: 26 }) } },
  { id: 'reasoning before a tool call', ask: { reasoning: true, tools: 1 }, play: { kind: 'tool_call', ...WEATHER, reasoning: THOUGHT, usage: usage(17, 42, { reasoning: 27 }) } },
  {
    id: 'reasoning before a tool call, streamed in 1-byte pieces',
    ask: { reasoning: true, tools: 1, stream: true },
    play: { kind: 'tool_call', ...WEATHER, reasoning: THOUGHT, usage: usage(18, 43, { reasoning: 28 }), pieceSize: 1 },
  },
  {
    id: 'reasoning kept through a tool loop',
    ask: { reasoning: true, tools: 1 },
    play: { kind: 'tool_call', ...WEATHER, reasoning: THOUGHT, usage: usage(19, 44, { reasoning: 29 }) },
    then: { kind: 'text', text: 'Es sind 21 °C und sonnig.', usage: usage(70, 9) },
  },
  {
    id: 'reasoning kept through a tool loop, streamed',
    ask: { reasoning: true, tools: 1, stream: true },
    play: { kind: 'tool_call', ...WEATHER, reasoning: THOUGHT, usage: usage(20, 45, { reasoning: 30 }) },
    then: { kind: 'text', text: 'Es sind 21 °C und sonnig.', usage: usage(71, 10) },
  },
  { id: 'upstream 429 before the first byte', ask: {}, play: { kind: 'error', status: 429, message: 'Rate limit reached for requests' } },
  { id: 'upstream 500 before the first byte', ask: {}, play: { kind: 'error', status: 500, message: 'The server had an error processing your request' } },
  { id: 'upstream 500 before the first byte of a stream', ask: { stream: true }, play: { kind: 'error', status: 500, message: 'The server had an error processing your request' } },
  { id: 'upstream failure mid-stream', ask: { stream: true }, play: { kind: 'stream_error', text: TEXT, message: 'Upstream overloaded mid-stream' } },
  { id: 'usage (cached prompt tokens too) in the answer and the audit row', ask: {}, play: { kind: 'text', text: TEXT, usage: usage(1234, 56, { cached: 1000 }) }, audit: true },
  { id: 'usage (cached prompt tokens too) in the stream and the audit row', ask: { stream: true }, play: { kind: 'text', text: TEXT, usage: usage(4321, 65, { cached: 4096 }) }, audit: true },
]

const APIS: Api[] = ['chat', 'responses', 'messages']
const PROVIDERS: ProviderType[] = ['openai', 'openai-compatible', 'azure', 'anthropic', 'ollama', 'mock']

/** Cells that cannot apply, by provider and line (every API), with why. */
const NOT_APPLICABLE: Partial<Record<ProviderType, Record<string, string>>> = {
  mock: {
    'tool call, streamed in 1-byte pieces': 'the mock answers in-process: there are no bytes to split',
    'reasoning before a tool call, streamed in 1-byte pieces': 'the mock answers in-process: there are no bytes to split',
    'parallel tool calls': 'the mock calls one tool per answer',
    'parallel tool calls, streamed': 'the mock calls one tool per answer',
    'image input': 'the mock has no upstream that could receive the image (it reads only the text of a message)',
    'upstream failure mid-stream': 'the mock cannot fail after its first chunk (its injected failures come before the answer)',
  },
}

/** The error each API answers for an upstream status before the first byte, and the SDK class it raises. */
const ERRORS: Record<number, Record<Api, { cls: new (...args: never[]) => Error; status: number; type: string; code: string }>> = {
  429: {
    chat: { cls: OpenAI.RateLimitError, status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
    responses: { cls: OpenAI.RateLimitError, status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
    messages: { cls: Anthropic.RateLimitError, status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  },
  500: {
    chat: { cls: OpenAI.InternalServerError, status: 502, type: 'upstream_error', code: 'upstream_unavailable' },
    responses: { cls: OpenAI.InternalServerError, status: 502, type: 'upstream_error', code: 'upstream_unavailable' },
    messages: { cls: Anthropic.InternalServerError, status: 502, type: 'api_error', code: 'upstream_unavailable' },
  },
}

/**
 * How each API ends a stream that fails after its first byte: chat with an `error` data event and
 * Messages with `event: error` (the SDKs raise both), Responses with response.failed (which the SDK
 * hands back as a Response with status failed).
 */
const BROKEN: Record<Api, (overload: boolean) => { how: 'raised' | 'failed'; cls: (new (...args: never[]) => Error) | null; code: string }> = {
  chat: (overload) => ({ how: 'raised', cls: OpenAI.APIError, code: overload ? 'upstream_overloaded' : 'upstream_stream_error' }),
  responses: () => ({ how: 'failed', cls: null, code: 'server_error' }),
  messages: (overload) => ({ how: 'raised', cls: Anthropic.APIError, code: overload ? 'overloaded_error' : 'api_error' }),
}

const STOP: Record<Api, (calls: boolean) => string> = {
  chat: (calls) => (calls ? 'tool_calls' : 'stop'),
  responses: () => 'completed',
  messages: (calls) => (calls ? 'tool_use' : 'end_turn'),
}

const tokenizer = new Tokenizer()
const exactCount = (text: string) => tokenizer.counter(1e9)(text)

/** Retries, key cooldowns and circuits would blur what one upstream answer does: each cell makes one call. */
const ONE_CALL_POLICY = { retry: { max_attempts: 1 }, keys: { cooldown_ms: 0 }, circuit: { consecutive_failures: 10_000, min_requests: 10_000 } }

describe('conformance matrix: ingress API × provider × scenario', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let openai: FakeUpstream
  let azure: FakeAzure
  let anthropic: FakeAnthropic
  let ollama: FakeOllama
  const drivers = new Map<ProviderType, ProviderDriver>()
  const clients = new Map<Api, Client>()
  /** what each request's audit row must say, by request id: checked at the end, in one read of the trail */
  const audits = new Map<string, Record<string, unknown>>()
  const served = (d: ProviderDriver, a: Ask, u: PlayedUsage, requestId = a.requestId) =>
    audits.set(requestId, { request_id: requestId, status: 200, model: a.model, provider: d.type, upstream_model: d.upstreamModel, stream: a.stream ? 1 : 0, error_code: null, prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion })

  beforeAll(async () => {
    await tokenizer.load()
    ;[openai, azure, anthropic, ollama] = await Promise.all([startFakeOpenAI(), startFakeAzure(), startFakeAnthropic(), startFakeOllama()])
    for (const d of [openAIDriver(openai, 'openai'), openAIDriver(openai, 'openai-compatible'), azureDriver(azure), anthropicDriver(anthropic), ollamaDriver(ollama), mockDriver()]) {
      drivers.set(d.type, d)
      await d.setup(data.dir)
    }
    await cliOk(data.dir, ['policy', 'set', 'global', '--file', '-'], JSON.stringify(ONE_CALL_POLICY))
    const key = keyFrom((await cliOk(data.dir, ['clients', 'add', 'matrix'])).stdout)
    proxy = await startTestProxy(data.dir)
    clients.set('chat', chatClient(new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })))
    clients.set('responses', responsesClient(new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })))
    clients.set('messages', messagesClient(new Anthropic({ apiKey: key, baseURL: proxy.url, maxRetries: 0 })))
  })
  afterAll(async () => {
    await proxy?.close()
    await Promise.all([openai?.close(), azure?.close(), anthropic?.close(), ollama?.close()])
    data.cleanup()
  })

  async function answered(client: Client, d: ProviderDriver, s: Answered, a: Ask): Promise<void> {
    const want = d.expect(s, client.api, a)
    compare(client.api, await client.ask(a), want)
    served(d, a, want.usage)
  }

  /** The tool loop: both answers as played, and the first answer's reasoning back upstream in its own form. */
  async function looped(client: Client, d: ProviderDriver, line: Line & { then: Answered }, a: Ask, before: number): Promise<void> {
    const { first, second } = await client.askLoop(a, () => d.play(line.then, client.api))
    const wantFirst = d.expect(line.play as Answered, client.api, a)
    const wantSecond = d.expect(line.then, client.api, { ...a, earlier: true })
    compare(client.api, first, wantFirst)
    compare(client.api, second, wantSecond)
    served(d, a, wantFirst.usage, `${a.requestId}.1`)
    served(d, { ...a, stream: false }, wantSecond.usage)
    if (!d.requests || !d.wire) return
    const calls = d.requests.slice(before)
    expect(calls, 'upstream calls for this cell').toHaveLength(2)
    const { seen, want } = d.wire.earlierReasoning(calls[1]!, client.api, (line.play as Answered).reasoning!)
    expect(seen).toEqual(want)
  }

  function compare(api: Api, answer: Answer, want: Expected): void {
    expect(answer.text).toBe(want.text)
    expect(answer.calls).toEqual(want.calls)
    expect(answer.stop).toBe(STOP[api](want.calls.length > 0))
    expect({ reasoning: answer.reasoning, signature: answer.signature }).toEqual({ reasoning: want.reasoning, signature: want.signature })
    const u = want.usage
    // Responses always report reasoning tokens (0 when the upstream said nothing); the others when the upstream did
    const reasoning = u.reasoning ?? (api === 'responses' ? 0 : null)
    expect(answer.usage).toEqual({ input: u.prompt, output: u.completion, total: u.prompt + u.completion, cached: u.cached ?? 0, reasoning })
  }

  async function refused(client: Client, d: ProviderDriver, s: Extract<Scenario, { kind: 'error' }>, a: Ask): Promise<void> {
    const seen = await client.askError(a)
    const want = ERRORS[s.status]![client.api]
    const { provider, message } = d.failure(s)
    expect(seen.error).toBeInstanceOf(want.cls)
    expect({ status: seen.status, type: seen.type, code: seen.code }).toEqual({ status: want.status, type: want.type, code: want.code })
    expect(seen.message).toContain(`Provider '${provider}'`)
    expect(seen.message).toContain(message)
    audits.set(a.requestId, { request_id: a.requestId, status: want.status, model: a.model, stream: a.stream ? 1 : 0, error_code: want.code, prompt_tokens: null, completion_tokens: null })
  }

  async function broken(client: Client, d: ProviderDriver, s: Extract<Scenario, { kind: 'stream_error' }>, a: Ask): Promise<void> {
    const seen = await client.askBroken(a)
    const want = BROKEN[client.api](d.overloadsMidStream)
    // everything the upstream sent before it failed reached the client
    expect(seen.text).toBe(s.text)
    expect(seen.how).toBe(want.how)
    if (want.cls) expect(seen.error).toBeInstanceOf(want.cls)
    expect(seen.code).toBe(want.code)
    expect(seen.message).toContain(s.message)
    // The upstream's usage for the answer never came: the proxy charges the prompt's estimate and what the
    // stream carried, counted with the tokenizer (or, before it has loaded, the character rule).
    await proxy.audit.flush()
    const row = JSON.parse((await cliOk(data.dir, ['audit', 'show', a.requestId, '--json'])).stdout)
    const audit = { request_id: a.requestId, status: 200, model: a.model, provider: d.type, upstream_model: d.upstreamModel, stream: 1, error_code: expect.any(String) }
    expect(row).toMatchObject(audit)
    expect(row.prompt_tokens).toBeGreaterThan(0)
    expect(row.completion_tokens).toBeOneOf([roughCount(s.text), exactCount(s.text)])
    audits.set(a.requestId, audit)
  }

  function upstreamSaw(d: ProviderDriver, api: Api, before: number, a: Ask): void {
    if (!d.requests || !d.wire) return
    const calls = d.requests.slice(before)
    expect(calls, 'upstream calls for this cell').toHaveLength(1)
    const req = calls[0]!
    expect(d.wire.model(req)).toBe(d.upstreamModel)
    if (a.image) {
      const { seen, want } = d.wire.image(req, api)
      expect(seen).toEqual(want)
    }
    if (a.reasoning) {
      const { seen, want } = d.wire.reasoning(req, api)
      expect(seen).toEqual(want)
    }
    if (a.tools) expect(d.wire.tools(req, api)).toEqual(TOOLS.slice(0, a.tools).map((t) => t.name))
    if (a.earlier) {
      const { seen, want } = d.wire.turns(req, api)
      expect(seen).toEqual(want)
    }
  }

  async function audited(d: ProviderDriver, s: Answered, api: Api, a: Ask): Promise<void> {
    await proxy.audit.flush()
    const row = JSON.parse((await cliOk(data.dir, ['audit', 'show', a.requestId, '--json'])).stdout)
    const u = d.expect(s, api, a).usage
    expect(row).toMatchObject({ request_id: a.requestId, status: 200, model: a.model, provider: d.type, upstream_model: d.upstreamModel, stream: a.stream ? 1 : 0 })
    expect({ prompt: row.prompt_tokens, completion: row.completion_tokens, total: row.total_tokens }).toEqual({ prompt: u.prompt, completion: u.completion, total: u.prompt + u.completion })
  }

  async function run(api: Api, type: ProviderType, line: Line, n: number): Promise<void> {
    const d = drivers.get(type)!
    const client = clients.get(api)!
    const s = line.play
    const a: Ask = { model: d.modelFor(s), stream: false, tools: 0, image: false, reasoning: false, earlier: false, ...line.ask, requestId: `matrix-${api}-${type}-${n}` }
    d.play(s, api)
    const before = d.requests?.length ?? 0
    if (line.then) return looped(client, d, { ...line, then: line.then }, a, before)
    if (s.kind === 'error') await refused(client, d, s, a)
    else if (s.kind === 'stream_error') await broken(client, d, s, a)
    else await answered(client, d, s, a)
    upstreamSaw(d, api, before, a)
    if (line.audit && (s.kind === 'text' || s.kind === 'tool_call')) await audited(d, s, api, a)
  }

  /** requests the cells make (a tool loop makes two) */
  let requests = 0
  for (const api of APIS) {
    describe(api, () => {
      for (const type of PROVIDERS) {
        describe(type, () => {
          LINES.forEach((line, n) => {
            if (NOT_APPLICABLE[type]?.[line.id]) return
            requests += line.then ? 2 : 1
            it(line.id, () => run(api, type, line, n))
          })
        })
      }
    })
  }

  it('records each request of the matrix once in the audit trail, and the usage table adds the audit rows up per model', async () => {
    await proxy.audit.flush()
    type Row = { request_id: string; model: string; status: number; prompt_tokens: number | null; completion_tokens: number | null }
    const rows = JSON.parse((await cliOk(data.dir, ['audit', 'ls', '--limit', '10000', '--json'])).stdout) as Row[]
    expect(rows).toHaveLength(requests)
    // every row as its cell expected it
    expect(audits.size).toBe(requests)
    const byId = new Map(rows.map((r) => [r.request_id, r]))
    for (const [id, want] of audits) expect(byId.get(id), id).toMatchObject(want)
    const sums = new Map<string, { model: string; requests: number; errors: number; promptTokens: number; completionTokens: number }>()
    for (const r of rows) {
      const sum = sums.get(r.model) ?? { model: r.model, requests: 0, errors: 0, promptTokens: 0, completionTokens: 0 }
      sums.set(r.model, { ...sum, requests: sum.requests + 1, errors: sum.errors + (r.status >= 400 ? 1 : 0), promptTokens: sum.promptTokens + (r.prompt_tokens ?? 0), completionTokens: sum.completionTokens + (r.completion_tokens ?? 0) })
    }
    const table = JSON.parse((await cliOk(data.dir, ['usage', '--by', 'model', '--json'])).stdout) as { rows: Array<{ model: string; requests: number; errors: number; promptTokens: number; completionTokens: number }> }
    const byModel = (a: { model: string }, b: { model: string }) => a.model.localeCompare(b.model)
    expect(table.rows.map(({ model, requests, errors, promptTokens, completionTokens }) => ({ model, requests, errors, promptTokens, completionTokens })).sort(byModel)).toEqual([...sums.values()].sort(byModel))
  })
})
