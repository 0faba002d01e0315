/**
 * The conformance matrix's providers: for each provider type, how the proxy is told about it, how its
 * fake upstream is made to play a scenario, what a client should get back, and how to read the request
 * the upstream received in the upstream's own wire format (its model, image, reasoning, tools, earlier
 * turns, and the reasoning a tool loop sends back).
 * The mock has no upstream: it answers in-process, so its driver computes what it will say.
 */
import { expect } from 'vitest'
import type { ChatRequest } from '../../src/core/openai-schema.js'
import type { ProviderType } from '../../src/core/provider-types.js'
import { reasoningText } from '../../src/core/reasoning.js'
import { countTokens } from '../../src/providers/mock.js'
import { mockThinking, mockToolCall } from '../../src/providers/mock-answer.js'
import { fakeSignature, FAKE_ANTHROPIC_KEY, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { AZURE_TEST_KEY, type FakeAzure } from '../fakes/azure-upstream.js'
import type { FakeOllama } from '../fakes/ollama-upstream.js'
import type { FakeUpstream } from '../fakes/openai-upstream.js'
import { FAKE_ENCRYPTED } from '../fakes/responses-api.js'
import { callsOf, type PlayedUsage, type Scenario } from '../fakes/scenario.js'
import { cliOk } from '../helpers/proxy.js'
import type { RecordedRequest } from './provider-suite.js'
import { EARLIER, IMAGE, PROMPT, REASONING, TOOLS, type Api, type Ask } from './matrix-clients.js'

/** A scenario that gives an answer (not an error). */
export type Answered = Extract<Scenario, { kind: 'text' | 'tool_call' }>

/** What a client should get back; call ids may be a matcher where the provider makes its own. */
export interface Expected {
  text: string
  calls: Array<{ id: unknown; name: string; args: unknown }>
  reasoning: string | null
  signature: string | null
  usage: PlayedUsage
}

/** How a request looks on the upstream's wire: read from the request it received, and what it should be. */
export interface Wire {
  model(req: RecordedRequest): string | undefined
  image(req: RecordedRequest, api: Api): { seen: unknown; want: unknown }
  reasoning(req: RecordedRequest, api: Api): { seen: unknown; want: unknown }
  tools(req: RecordedRequest, api: Api): string[]
  /** the conversation, reduced to what must survive translation */
  turns(req: RecordedRequest, api: Api): { seen: Turn[]; want: Turn[] }
  /** the reasoning of an earlier answer (`thought`) as it went back upstream on the next turn of a tool loop */
  earlierReasoning(req: RecordedRequest, api: Api, thought: string): { seen: unknown; want: unknown }
}

/** One turn of a conversation as any wire carries it. Ollama has no call ids: its results name the function. */
export type Turn =
  | { role: 'user'; text: string }
  | { role: 'assistant'; text: string; calls: Array<{ id: string | null; name: string; args: unknown }> }
  | { role: 'tool'; id: string | null; name: string | null; text: string }

/** The conversation a cell with an earlier turn sends: the prompt, the call, its result. */
function conversation(byName: boolean): Turn[] {
  const { call, result } = EARLIER
  return [
    { role: 'user', text: PROMPT },
    { role: 'assistant', text: '', calls: [{ id: byName ? null : call.id, name: call.name, args: call.args }] },
    { role: 'tool', id: byName ? null : call.id, name: byName ? call.name : null, text: result },
  ]
}

type Part = { type: string; text?: string }
const joinText = (content: string | Part[] | null | undefined) => (typeof content === 'string' ? content : (content ?? []).map((p) => (p.type === 'text' ? p.text : '')).join(''))

/** Chat completions messages (OpenAI, Azure, OpenAI-compatible hosts) as turns. */
function chatTurns(messages: Array<Record<string, any>>): Turn[] {
  return messages.map((m): Turn => {
    if (m.role === 'tool') return { role: 'tool', id: m.tool_call_id, name: null, text: joinText(m.content) }
    if (m.role === 'assistant') return { role: 'assistant', text: joinText(m.content), calls: (m.tool_calls ?? []).map((c: any) => ({ id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) })) }
    return { role: 'user', text: joinText(m.content) }
  })
}

/** Responses input items as turns: consecutive function calls are one assistant turn. */
function responsesTurns(input: Array<Record<string, any>>): Turn[] {
  const turns: Turn[] = []
  for (const item of input) {
    const last = turns.at(-1)
    if (item.type === 'function_call') {
      const call = { id: item.call_id, name: item.name, args: JSON.parse(item.arguments) }
      if (last?.role === 'assistant') last.calls.push(call)
      else turns.push({ role: 'assistant', text: '', calls: [call] })
    } else if (item.type === 'function_call_output') turns.push({ role: 'tool', id: item.call_id, name: null, text: item.output })
    else turns.push({ role: 'user', text: typeof item.content === 'string' ? item.content : item.content.map((p: Part) => p.text ?? '').join('') })
  }
  return turns
}

/** Anthropic messages as turns: each tool_result block is a turn of its own. */
function anthropicTurns(messages: Array<{ role: string; content: string | Array<Record<string, any>> }>): Turn[] {
  return messages.flatMap((m): Turn[] => {
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content
    if (m.role === 'assistant') {
      return [{ role: 'assistant', text: joinText(blocks as Part[]), calls: blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, args: b.input })) }]
    }
    const results: Turn[] = blocks.filter((b) => b.type === 'tool_result').map((b) => ({ role: 'tool', id: b.tool_use_id, name: null, text: joinText(b.content) }))
    const text = joinText(blocks.filter((b) => b.type !== 'tool_result') as Part[])
    return text ? [...results, { role: 'user', text }] : results
  })
}

/** Ollama messages as turns: calls without ids, results with the function's name. */
function ollamaTurns(messages: Array<Record<string, any>>): Turn[] {
  return messages.map((m): Turn => {
    if (m.role === 'tool') return { role: 'tool', id: null, name: m.tool_name ?? null, text: m.content }
    if (m.role === 'assistant') return { role: 'assistant', text: m.content, calls: (m.tool_calls ?? []).map((c: any) => ({ id: null, name: c.function.name, args: c.function.arguments })) }
    return { role: 'user', text: m.content }
  })
}

export interface ProviderDriver {
  /** the provider's type, which is also its name in the proxy */
  type: ProviderType
  /** the upstream model (Azure: the deployment) the route names */
  upstreamModel: string
  /** the model a client asks for to reach this provider with this scenario */
  modelFor(s: Scenario): string
  /** adds the provider, its key and its routes */
  setup(dataDir: string): Promise<void>
  /** the requests the fake upstream received; null when there is no upstream (the mock) */
  requests: RecordedRequest[] | null
  /** the next upstream answer plays `s`, for a request that came in through `api` */
  play(s: Scenario, api: Api): void
  expect(s: Answered, api: Api, ask: Ask): Expected
  /** the provider name and the message an error scenario's answer names */
  failure(s: Extract<Scenario, { kind: 'error' }>): { provider: string; message: string }
  /** the fake's failure after the first byte is an overload (Anthropic's overloaded_error), not a plain error */
  overloadsMidStream: boolean
  wire: Wire | null
}

const route = (type: string) => `${type}-model`

async function addProvider(dir: string, type: ProviderType, opts: { baseUrl?: string; key?: string; settings?: Record<string, string | number | boolean> }, upstreamModel: string, name: string = type): Promise<void> {
  const settings = Object.entries(opts.settings ?? {}).flatMap(([k, v]) => ['--setting', `${k}=${v}`])
  await cliOk(dir, ['providers', 'add', name, '--type', type, ...(opts.baseUrl ? ['--base-url', opts.baseUrl] : []), ...settings])
  if (opts.key) await cliOk(dir, ['keys', 'add', name], opts.key)
  await cliOk(dir, ['models', 'add', name === type ? route(type) : name, '--target', `${name}/${upstreamModel}`])
}

/** How a provider that answers from the scenario shows it: which ids it keeps, what reasoning it returns. */
interface Plays {
  /** tool call ids come back as the upstream sent them (else the adapter makes `call_…` ones) */
  keepsCallIds: boolean
  /** the reasoning text and signature a client sees for this API, given the scenario's reasoning text */
  reasoning(api: Api, text: string | undefined, ask: Ask): { reasoning: string | null; signature: string | null }
  /** the upstream reports reasoning tokens in its usage */
  reportsReasoningTokens: boolean
  /** the upstream reports prompt tokens read from its cache */
  reportsCache: boolean
}

function played(s: Answered, plays: Plays, api: Api, ask: Ask): Expected {
  const usage: PlayedUsage = { prompt: s.usage.prompt, completion: s.usage.completion }
  if (plays.reportsReasoningTokens && s.usage.reasoning !== undefined) usage.reasoning = s.usage.reasoning
  if (plays.reportsCache && s.usage.cached !== undefined) usage.cached = s.usage.cached
  return {
    text: s.kind === 'text' ? s.text : (s.text ?? ''),
    calls: s.kind === 'tool_call' ? callsOf(s).map((c) => ({ id: plays.keepsCallIds ? c.id : expect.stringMatching(/^call_\w+$/), name: c.name, args: c.args })) : [],
    ...plays.reasoning(api, s.reasoning, ask),
    usage,
  }
}

const noSignature = (text: string | undefined) => ({ reasoning: text ?? null, signature: null })

/** OpenAI's Responses API: a reasoning request always gets a reasoning item, with its encrypted content when included. */
const nativeReasoning = (text: string | undefined, ask: Ask) => ({ reasoning: text ?? null, signature: ask.reasoning ? FAKE_ENCRYPTED : null })

/**
 * OpenAI's wire: chat completions, and (`own`: OpenAI's or Azure's own service, not a compatible host) the
 * Responses API, called natively.
 */
function openAIWire(own: boolean, model: (req: RecordedRequest) => string | undefined): Wire {
  const native = (api: Api) => api === 'responses' && own
  return {
    model,
    image(req, api) {
      if (native(api)) return { seen: req.body.input[0].content.find((p: { type: string }) => p.type === 'input_image'), want: { type: 'input_image', image_url: IMAGE.dataUrl, detail: 'auto' } }
      const part = req.body.messages.at(-1).content.find((p: { type: string }) => p.type === 'image_url')
      // a Responses input_image says its detail, which chat keeps
      return { seen: part, want: { type: 'image_url', image_url: { url: IMAGE.dataUrl, ...(api === 'responses' ? { detail: 'auto' } : {}) } } }
    },
    reasoning(req, api) {
      if (native(api)) return { seen: { reasoning: req.body.reasoning, include: req.body.include }, want: { reasoning: { effort: REASONING.effort, summary: 'auto' }, include: ['reasoning.encrypted_content'] } }
      return { seen: req.body.reasoning_effort, want: REASONING.effort }
    },
    tools: (req, api) => req.body.tools.map((t: { name?: string; function?: { name: string } }) => (native(api) ? t.name : t.function!.name)),
    turns: (req, api) => ({ seen: native(api) ? responsesTurns(req.body.input) : chatTurns(req.body.messages), want: conversation(false) }),
    earlierReasoning(req, api, thought) {
      // OpenAI's own reasoning item goes back untouched, its encrypted content included
      if (native(api)) return { seen: req.body.input.find((i: { type?: string }) => i.type === 'reasoning'), want: expect.objectContaining({ summary: [{ type: 'summary_text', text: thought }], encrypted_content: FAKE_ENCRYPTED }) }
      // OpenAI's chat completions gave no reasoning text, so none can go back; a compatible host's goes back
      // by one name or the other (DeepSeek reads reasoning_content, vLLM and Ollama reasoning)
      const assistant = req.body.messages.find((m: { role: string }) => m.role === 'assistant')
      return { seen: reasoningText(assistant) ?? null, want: own ? null : thought }
    },
  }
}

/**
 * OpenAI itself (type openai) and an OpenAI-compatible host (type openai-compatible) on the same fake.
 * OpenAI's chat completions return no reasoning text (only reasoning_tokens); its Responses API returns
 * reasoning items with a summary and encrypted content. A compatible reasoning host (DeepSeek, vLLM)
 * streams `reasoning_content`, and has no Responses API, so Responses are translated to chat for it.
 */
export function openAIDriver(fake: FakeUpstream, type: 'openai' | 'openai-compatible'): ProviderDriver {
  const own = type === 'openai'
  const plays: Plays = {
    keepsCallIds: true,
    reportsReasoningTokens: true,
    reportsCache: true,
    reasoning: (api, text, ask) => (!own ? noSignature(text) : api === 'responses' ? nativeReasoning(text, ask) : noSignature(undefined)),
  }
  return {
    type,
    upstreamModel: own ? 'gpt-5-upstream' : 'deepseek-reasoner',
    modelFor: () => route(type),
    setup: (dir) => addProvider(dir, type, { baseUrl: fake.url, key: `sk-${type}-upstream-key` }, own ? 'gpt-5-upstream' : 'deepseek-reasoner'),
    requests: fake.requests,
    play(s, api) {
      // OpenAI's chat completions never carry the reasoning text: only its Responses API does
      const strip = own && api !== 'responses' && (s.kind === 'text' || s.kind === 'tool_call')
      fake.play(strip ? { ...s, reasoning: undefined } : s)
    },
    expect: (s, api, ask) => played(s, plays, api, ask),
    failure: (s) => ({ provider: type, message: s.message }),
    overloadsMidStream: false,
    wire: openAIWire(own, (req) => req.body?.model),
  }
}

/** Azure OpenAI: OpenAI's wire at Azure's addresses (deployments for chat, the v1 Responses API natively). */
export function azureDriver(fake: FakeAzure): ProviderDriver {
  const plays: Plays = {
    keepsCallIds: true,
    reportsReasoningTokens: true,
    reportsCache: true,
    reasoning: (api, text, ask) => (api === 'responses' ? nativeReasoning(text, ask) : noSignature(undefined)),
  }
  return {
    type: 'azure',
    upstreamModel: 'gpt-5-deployment',
    modelFor: () => route('azure'),
    setup: (dir) => addProvider(dir, 'azure', { baseUrl: fake.baseUrl, key: AZURE_TEST_KEY, settings: { api_version: '2024-10-21' } }, 'gpt-5-deployment'),
    requests: fake.requests,
    play(s, api) {
      // like OpenAI, Azure's chat completions carry no reasoning text (the fake would not send it anyway)
      fake.play(api !== 'responses' && (s.kind === 'text' || s.kind === 'tool_call') ? { ...s, reasoning: undefined } : s)
    },
    expect: (s, api, ask) => played(s, plays, api, ask),
    failure: (s) => ({ provider: 'azure', message: s.message }),
    overloadsMidStream: false,
    wire: openAIWire(true, (req) => (req.path.includes('/openai/v1/responses') ? req.body?.model : fake.modelOf(req))),
  }
}

/** Anthropic: Messages natively, chat and Responses translated; thinking comes signed. */
export function anthropicDriver(fake: FakeAnthropic): ProviderDriver {
  const plays: Plays = {
    keepsCallIds: true,
    reportsReasoningTokens: false,
    reportsCache: true,
    reasoning: (_api, text) => ({ reasoning: text ?? null, signature: text ? fakeSignature(text) : null }),
  }
  return {
    type: 'anthropic',
    upstreamModel: 'claude-sonnet-4-5',
    modelFor: () => route('anthropic'),
    setup: (dir) => addProvider(dir, 'anthropic', { baseUrl: fake.url, key: FAKE_ANTHROPIC_KEY }, 'claude-sonnet-4-5'),
    requests: fake.requests,
    play: (s) => fake.play(s),
    expect: (s, api, ask) => played(s, plays, api, ask),
    failure: (s) => ({ provider: 'anthropic', message: s.message }),
    overloadsMidStream: true,
    wire: {
      model: (req) => req.body?.model,
      image: (req) => ({ seen: req.body.messages.at(-1).content.find((b: { type: string }) => b.type === 'image'), want: { type: 'image', source: { type: 'base64', media_type: IMAGE.mediaType, data: IMAGE.base64 } } }),
      reasoning: (req) => ({ seen: req.body.thinking, want: { type: 'enabled', budget_tokens: REASONING.budget } }),
      tools: (req) => req.body.tools.map((t: { name: string }) => t.name),
      turns: (req) => ({ seen: anthropicTurns(req.body.messages), want: conversation(false) }),
      // in a tool loop with thinking on, the assistant turn must open with its signed thinking block
      earlierReasoning: (req, _api, thought) => ({
        seen: req.body.messages.find((m: { role: string }) => m.role === 'assistant').content[0],
        want: { type: 'thinking', thinking: thought, signature: fakeSignature(thought) },
      }),
    },
  }
}

/** Ollama's native API: NDJSON streams, images as bare base64, `think`, tool calls without ids. */
export function ollamaDriver(fake: FakeOllama): ProviderDriver {
  const plays: Plays = { keepsCallIds: false, reportsReasoningTokens: false, reportsCache: false, reasoning: (_api, text) => noSignature(text) }
  return {
    type: 'ollama',
    upstreamModel: 'qwen3:8b',
    modelFor: () => route('ollama'),
    setup: (dir) => addProvider(dir, 'ollama', { baseUrl: fake.baseUrl }, 'qwen3:8b'),
    requests: fake.requests,
    play: (s) => fake.play(s),
    expect: (s, api, ask) => played(s, plays, api, ask),
    failure: (s) => ({ provider: 'ollama', message: s.message }),
    overloadsMidStream: false,
    wire: {
      model: (req) => req.body?.model,
      image: (req) => ({ seen: req.body.messages.at(-1).images, want: [IMAGE.base64] }),
      // Ollama's levels: minimal and low are both 'low'
      reasoning: (req) => ({ seen: req.body.think, want: 'low' }),
      tools: (req) => req.body.tools.map((t: { function: { name: string } }) => t.function.name),
      turns: (req) => ({ seen: ollamaTurns(req.body.messages), want: conversation(true) }),
      earlierReasoning: (req, _api, thought) => ({ seen: req.body.messages.find((m: { role: string }) => m.role === 'assistant').thinking, want: thought }),
    },
  }
}

/**
 * The built-in mock: tool_calls on (it calls the first tool offered, with arguments made from its schema),
 * reasoning when an effort is asked, usage counted at about four characters a token. Errors come from two
 * more mock providers that fail every call with 429 and 500.
 */
export function mockDriver(): ProviderDriver {
  return {
    type: 'mock',
    upstreamModel: 'mock-1',
    modelFor: (s) => (s.kind === 'error' ? `mock-${s.status}` : route('mock')),
    async setup(dir) {
      await addProvider(dir, 'mock', { settings: { tool_calls: true, chunks: 4 } }, 'mock-1')
      for (const status of [429, 500]) await addProvider(dir, 'mock', { settings: { error_rate: 1, error_status: status } }, 'mock-1', `mock-${status}`)
    },
    requests: null,
    play: () => {},
    expect(_s, api, ask) {
      // what the mock makes of the translated request: the prompt (and the earlier call and its result)
      const { call: earlier, result } = EARLIER
      const req: ChatRequest = {
        model: 'mock-1',
        messages: [
          { role: 'user', content: PROMPT },
          ...(ask.earlier
            ? [
                { role: 'assistant' as const, content: null, tool_calls: [{ id: earlier.id, type: 'function' as const, function: { name: earlier.name, arguments: JSON.stringify(earlier.args) } }] },
                { role: 'tool' as const, tool_call_id: earlier.id, content: result },
              ]
            : []),
        ],
        ...(ask.tools ? { tools: TOOLS.slice(0, ask.tools).map((t) => ({ type: 'function' as const, function: t })) } : {}),
        ...(ask.reasoning ? { reasoning_effort: REASONING.effort } : {}),
      }
      const call = mockToolCall(req)
      const thinking = mockThinking(req, PROMPT, call)
      const text = call ? '' : `Mock reply from mock-1: you said "${PROMPT}".`
      const reasoningTokens = countTokens(thinking?.text ?? '')
      return {
        text,
        calls: call ? [{ id: call.id, name: call.name, args: JSON.parse(call.arguments) }] : [],
        reasoning: thinking?.text ?? null,
        signature: thinking?.block.signature ?? null,
        usage: {
          // four tokens a message, and its text (a call's message has none)
          prompt: 4 + countTokens(PROMPT) + (ask.earlier ? 8 + countTokens(result) : 0),
          completion: countTokens(call ? call.arguments : text) + reasoningTokens,
          ...(thinking ? { reasoning: reasoningTokens } : {}),
        },
      }
    },
    failure: (s) => ({ provider: `mock-${s.status}`, message: `mock provider injected a ${s.status} failure` }),
    overloadsMidStream: false,
    wire: null,
  }
}
