import { describe, expect, it } from 'vitest'
import { ProxyError } from '../../../src/core/errors.js'
import { chatRequestSchema, completionRequestSchema, type ChatRequest } from '../../../src/core/openai-schema.js'
import { completionToMessagesRequest, toMessagesRequest, type MappingOptions } from '../../../src/providers/anthropic/request.js'
import { finishReason, streamError, toUsage } from '../../../src/providers/anthropic/response.js'

const TOOL = { type: 'function' as const, function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }

function map(body: Record<string, unknown>, extra: Partial<MappingOptions> = {}) {
  const dropped: string[] = []
  const req = chatRequestSchema.parse({ model: 'm', ...body }) as ChatRequest
  const out = toMessagesRequest(req, { provider: 'claude', model: 'claude-x', defaultMaxTokens: 4096, warn: (p) => dropped.push(p), ...extra })
  return { out, dropped }
}

function refusal(fn: () => unknown): ProxyError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError)
    return err as ProxyError
  }
  throw new Error('expected a ProxyError')
}

const user = (content: unknown) => ({ role: 'user', content })

describe('anthropic request mapping', () => {
  it('joins system and developer messages into the top-level system prompt', () => {
    const { out } = map({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] }, user('Hi')] })
    expect(out).toEqual({ model: 'claude-x', max_tokens: 4096, system: 'Be brief.\n\nAnswer in French.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] })
  })

  it('keeps system blocks (not a joined string) when one of them asks for prompt caching', () => {
    const { out } = map({ messages: [{ role: 'system', content: [{ type: 'text', text: 'Long context', cache_control: { type: 'ephemeral' } }] }, user('Hi')] })
    expect(out.system).toEqual([{ type: 'text', text: 'Long context', cache_control: { type: 'ephemeral' } }])
  })

  it('maps a data URL image to a base64 source and an https URL to a url source', () => {
    const { out } = map({
      messages: [
        user([
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
        ]),
      ],
    })
    expect(out.messages[0]!.content).toEqual([
      { type: 'text', text: 'What is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ])
  })

  it('refuses image URLs that are neither https nor base64 data URLs, naming the part', () => {
    expect(refusal(() => map({ messages: [user([{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }])] }))).toMatchObject({ status: 400, param: 'messages[0].content[0].image_url.url' })
    expect(refusal(() => map({ messages: [user([{ type: 'image_url', image_url: { url: 'data:image/png,rawbytes' } }])] }))).toMatchObject({ status: 400, param: 'messages[0].content[0].image_url.url' })
    expect(refusal(() => map({ messages: [user([{ type: 'input_audio', input_audio: { data: 'x', format: 'wav' } }])] }))).toMatchObject({ status: 400, param: 'messages[0].content[0].type' })
  })

  it('turns assistant tool_calls into tool_use blocks and merges consecutive tool results into one user turn', () => {
    const { out } = map({
      tools: [TOOL],
      messages: [
        user('Weather in Paris and Rome?'),
        {
          role: 'assistant',
          content: 'Checking both.',
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Rome"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'rain' }] },
        user('And tomorrow?'),
      ],
    })
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Rome?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking both.' },
          { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { location: 'Paris' } },
          { type: 'tool_use', id: 'call_2', name: 'get_weather', input: { location: 'Rome' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' },
          { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: 'rain' }] },
          { type: 'text', text: 'And tomorrow?' },
        ],
      },
    ])
    expect(out.tools).toEqual([{ name: 'get_weather', description: 'Weather for a city', input_schema: TOOL.function.parameters }])
  })

  it('keeps user and assistant turns alternating: same-role neighbours merge, empty messages vanish', () => {
    const { out } = map({ messages: [user('one'), user([{ type: 'text', text: 'two' }]), { role: 'assistant', content: 'a' }, { role: 'assistant', content: '' }, { role: 'assistant', content: 'b' }, user('three')] })
    expect(out.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user'])
    expect(out.messages[0]!.content).toEqual([{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }])
    expect(out.messages[1]!.content).toEqual([{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }])
  })

  it('puts tool results before other content in a user turn, as Anthropic requires', () => {
    const { out } = map({
      messages: [
        user('Weather?'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
        user('(tool output follows)'),
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      ],
    })
    expect(out.messages[1]!.content).toEqual([{ type: 'tool_use', id: 'c1', name: 'get_weather', input: {} }])
    expect(out.messages[2]!.content.map((b) => b.type)).toEqual(['tool_result', 'text'])
  })

  it('maps every tool_choice form, and parallel_tool_calls: false to disable_parallel_tool_use', () => {
    const choice = (tool_choice: unknown, parallel_tool_calls?: boolean) => map({ tools: [TOOL], tool_choice, parallel_tool_calls, messages: [user('x')] }).out.tool_choice
    expect(choice('auto')).toEqual({ type: 'auto' })
    expect(choice('none')).toEqual({ type: 'none' })
    expect(choice('required')).toEqual({ type: 'any' })
    expect(choice({ type: 'function', function: { name: 'get_weather' } })).toEqual({ type: 'tool', name: 'get_weather' })
    expect(choice(undefined)).toBeUndefined()
    expect(choice('required', false)).toEqual({ type: 'any', disable_parallel_tool_use: true })
    expect(choice(undefined, false)).toEqual({ type: 'auto', disable_parallel_tool_use: true })
    expect(choice('none', false)).toEqual({ type: 'none' })
    expect(map({ tool_choice: 'auto', messages: [user('x')] }).out.tool_choice).toBeUndefined()
  })

  it('gives a parameterless function an empty object schema', () => {
    const { out } = map({ tools: [{ type: 'function', function: { name: 'now' } }], messages: [user('x')] })
    expect(out.tools).toEqual([{ name: 'now', input_schema: { type: 'object', properties: {} } }])
  })

  it('maps stop to stop_sequences, user to metadata.user_id and clamps temperature to 1', () => {
    expect(map({ stop: 'END', messages: [user('x')] }).out.stop_sequences).toEqual(['END'])
    const { out } = map({ stop: ['a', 'b'], user: 'user-42', temperature: 1.6, top_p: 0.9, messages: [user('x')] })
    expect(out).toMatchObject({ stop_sequences: ['a', 'b'], metadata: { user_id: 'user-42' }, temperature: 1, top_p: 0.9 })
    expect(map({ temperature: 0.3, messages: [user('x')] }).out.temperature).toBe(0.3)
    expect(map({ stop: [], messages: [user('x')] }).out.stop_sequences).toBeUndefined()
    expect(map({ safety_identifier: 'sid-1', messages: [user('x')] })).toMatchObject({ out: { metadata: { user_id: 'sid-1' } }, dropped: [] })
  })

  it('takes max_completion_tokens over max_tokens, and the provider default when neither is sent', () => {
    expect(map({ messages: [user('x')] }).out.max_tokens).toBe(4096)
    expect(map({ messages: [user('x')] }, { defaultMaxTokens: 1000 }).out.max_tokens).toBe(1000)
    expect(map({ max_tokens: 50, messages: [user('x')] }).out.max_tokens).toBe(50)
    expect(map({ max_tokens: 50, max_completion_tokens: 60, messages: [user('x')] }).out.max_tokens).toBe(60)
  })

  it('refuses tool call arguments that are not a JSON object, naming the field', () => {
    const withArgs = (args: string) => () =>
      map({ messages: [user('x'), { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }] }] })
    const err = refusal(withArgs('{"location": Paris}'))
    expect(err).toMatchObject({ status: 400, type: 'invalid_request_error', param: 'messages[1].tool_calls[0].function.arguments' })
    expect(err.message).toMatch(/not valid JSON/)
    expect(refusal(withArgs('[1,2]'))).toMatchObject({ status: 400, param: 'messages[1].tool_calls[0].function.arguments' })
  })

  it('refuses n > 1, logprobs, json_schema and the deprecated functions with a 400 naming the parameter', () => {
    expect(refusal(() => map({ n: 3, messages: [user('x')] }))).toMatchObject({ status: 400, param: 'n', code: 'unsupported_parameter' })
    expect(refusal(() => map({ n: 3, messages: [user('x')] })).message).toMatch(/'claude'.*one choice/)
    expect(refusal(() => map({ logprobs: true, messages: [user('x')] }))).toMatchObject({ status: 400, param: 'logprobs' })
    expect(refusal(() => map({ top_logprobs: 2, messages: [user('x')] }))).toMatchObject({ status: 400, param: 'top_logprobs' })
    expect(refusal(() => map({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } }, messages: [user('x')] }))).toMatchObject({ status: 400, param: 'response_format' })
    expect(refusal(() => map({ functions: [{ name: 'f' }], messages: [user('x')] }))).toMatchObject({ status: 400, param: 'functions' })
    expect(refusal(() => map({ messages: [{ role: 'function', name: 'f', content: 'x' }] }))).toMatchObject({ status: 400, param: 'messages[0].role' })
    expect(map({ n: 1, logprobs: false, messages: [user('x')] }).out.messages).toHaveLength(1)
  })

  it('drops and reports sampling parameters Anthropic lacks, and any parameter it does not know', () => {
    const { out, dropped } = map({ seed: 0, presence_penalty: 0.4, frequency_penalty: 0, logit_bias: { '1': 5 }, response_format: { type: 'json_object' }, verbosity: 'low', store: true, metadata: { a: 'b' }, messages: [user('x')] })
    expect(dropped.sort()).toEqual(['logit_bias', 'presence_penalty', 'response_format', 'seed', 'verbosity'])
    expect(Object.keys(out).sort()).toEqual(['max_tokens', 'messages', 'model'])
    expect(map({ logit_bias: {}, presence_penalty: 0, response_format: { type: 'text' }, messages: [user('x')] }).dropped).toEqual([])
  })

  it('maps a legacy completion prompt to one user message, refusing what it cannot honour', () => {
    const opts: MappingOptions = { provider: 'claude', model: 'claude-x', defaultMaxTokens: 4096, warn: () => {} }
    const completion = (body: Record<string, unknown>) => completionToMessagesRequest(completionRequestSchema.parse({ model: 'm', ...body }), opts)
    expect(completion({ prompt: 'Say hi', max_tokens: 5, stop: '\n' })).toEqual({ model: 'claude-x', max_tokens: 5, stop_sequences: ['\n'], messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hi' }] }] })
    expect(completion({ prompt: ['Only one'] }).messages[0]!.content).toEqual([{ type: 'text', text: 'Only one' }])
    expect(refusal(() => completion({ prompt: ['a', 'b'] }))).toMatchObject({ status: 400, param: 'prompt' })
    expect(refusal(() => completion({ prompt: [1, 2, 3] }))).toMatchObject({ status: 400, param: 'prompt' })
    expect(refusal(() => completion({ prompt: 'x', echo: true }))).toMatchObject({ status: 400, param: 'echo' })
    expect(refusal(() => completion({ prompt: 'x', suffix: 'end' }))).toMatchObject({ status: 400, param: 'suffix' })
    expect(refusal(() => completion({ prompt: 'x', n: 2 }))).toMatchObject({ status: 400, param: 'n' })
    expect(refusal(() => completion({ prompt: 'x', logprobs: 1 }))).toMatchObject({ status: 400, param: 'logprobs' })
  })
})

describe('anthropic response pieces', () => {
  it('maps every stop_reason to an OpenAI finish_reason', () => {
    expect(['end_turn', 'stop_sequence', 'max_tokens', 'tool_use', 'refusal', 'pause_turn', 'model_context_window_exceeded'].map(finishReason)).toEqual([
      'stop',
      'stop',
      'length',
      'tool_calls',
      'content_filter',
      'stop',
      'length',
    ])
    expect(finishReason(null)).toBeNull()
  })

  it('counts cache reads and writes into prompt_tokens and reports reads as cached_tokens, writes as cache_creation_tokens', () => {
    expect(toUsage({ input_tokens: 10, cache_read_input_tokens: 100, cache_creation_input_tokens: 5, output_tokens: 7 })).toEqual({
      prompt_tokens: 115,
      completion_tokens: 7,
      total_tokens: 122,
      prompt_tokens_details: { cached_tokens: 100, cache_creation_tokens: 5 },
    })
  })

  it('maps mid-stream error types to the status Anthropic uses for them', () => {
    expect(streamError('claude', { type: 'overloaded_error', message: 'Overloaded' })).toMatchObject({ status: 502, code: 'upstream_overloaded', retryable: true })
    expect(streamError('claude', { type: 'rate_limit_error', message: 'slow' })).toMatchObject({ status: 429, retryable: true })
    expect(streamError('claude', { type: 'api_error', message: 'boom' })).toMatchObject({ status: 502, code: 'upstream_unavailable', retryable: true })
    expect(streamError('claude', { type: 'invalid_request_error', message: 'bad' })).toMatchObject({ status: 400, retryable: false })
    expect(streamError('claude', { type: 'overloaded_error', message: 'Overloaded' }).message).toMatch(/'claude'.*Overloaded/)
  })
})
