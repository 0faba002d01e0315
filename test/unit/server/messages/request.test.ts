import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ProxyError } from '../../../../src/core/errors.js'
import { parseCountTokensRequest, parseMessagesRequest } from '../../../../src/core/messages-schema.js'
import { chatRequestSchema } from '../../../../src/core/openai-schema.js'
import { toChatRequest } from '../../../../src/server/messages/request.js'
import { readTestdata, testdataDir, testdataLocation } from '../../../helpers/testdata.js'

/** The ProxyError that `fn` throws. */
function refusal(fn: () => unknown): ProxyError {
  let thrown: unknown = null
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(ProxyError)
  return thrown as ProxyError
}

const translate = (body: Record<string, unknown>) => toChatRequest(parseMessagesRequest({ model: 'claude-x', max_tokens: 1024, ...body }))
const user = (content: unknown) => ({ role: 'user', content })

interface Captured {
  body: Record<string, unknown> & {
    system: Array<{ text: string }>
    tools: Array<{ name: string; description: string; input_schema: Record<string, unknown>; defer_loading?: boolean }>
    messages: Array<{ role: string; content: Array<{ type: string; text?: string }> }>
  }
}

describe.skipIf(!testdataDir)('Claude Code requests (agents/claude-code.json)', () => {
  if (!testdataDir) console.warn(`skipping: no shared test data at ${testdataLocation}`)
  const captured = testdataDir ? (JSON.parse(readTestdata('agents/claude-code.json')) as Captured[]) : []

  it('validates every captured body, keeping fields it does not know', () => {
    expect(captured).toHaveLength(2)
    for (const { body } of captured) {
      const parsed = parseMessagesRequest(body)
      expect(parsed.thinking).toEqual({ type: 'enabled', budget_tokens: 31999, display: 'omitted' })
      expect(parsed.context_management).toEqual({ edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] })
      expect(parsed.tools?.[10]).toMatchObject({ name: 'DeferredToolPlaceholder', defer_loading: true })
      expect(parseCountTokensRequest(body).messages).toHaveLength(body.messages.length)
    }
  })

  it('maps the system blocks, the user turn, the thinking budget and the session metadata', () => {
    const { body } = captured[0]!
    const { request, dropped } = toChatRequest(parseMessagesRequest(body))
    expect(body.system[0]!.text).toMatch(/^x-anthropic-billing-header: /)
    // the billing line is left out, the two instructions joined
    expect(request.messages[0]).toEqual({ role: 'system', content: `${body.system[1]!.text}\n\n${body.system[2]!.text}` })
    expect(request.messages[1]).toEqual({ role: 'user', content: body.messages[0]!.content.map((b) => ({ type: 'text', text: b.text })) })
    expect(request.messages).toHaveLength(2)
    expect(request.model).toBe('claude-sonnet-4-5-20250929')
    expect(request.max_completion_tokens).toBe(32000)
    expect(request.reasoning_effort).toBe('high') // budget 31,999
    expect(request.stream).toBe(true)
    expect(request.stream_options).toEqual({ include_usage: true })
    // the user_id is a JSON document of 170 characters: sent as its SHA-256
    const userId = (body.metadata as { user_id: string }).user_id
    expect(userId.length).toBeGreaterThan(64)
    expect(request.user).toBe(createHash('sha256').update(userId).digest('hex'))
    expect(dropped.sort()).toEqual(['context_management', 'thinking.display'])
    expect(chatRequestSchema.safeParse(request).success).toBe(true)
  })

  it('maps the 12 tools: 11 functions with their schemas, the deferred placeholder hidden', () => {
    const { body } = captured[0]!
    const { request } = toChatRequest(parseMessagesRequest(body))
    expect(body.tools).toHaveLength(12)
    const expected = body.tools
      .filter((t) => !t.defer_loading)
      .map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } }))
    expect(expected).toHaveLength(11)
    expect(request.tools).toEqual(expected)
    expect(request.tools!.map((t) => t.function.name)).toEqual(['Agent', 'Bash', 'Edit', 'ListAgents', 'Read', 'ReportFindings', 'ScheduleWakeup', 'Skill', 'ToolSearch', 'Workflow', 'Write'])
    expect(request.tool_choice).toBeUndefined()
  })

  it('maps the tool_use turn to assistant tool_calls and the failed tool_result to a tool message', () => {
    const { body } = captured[1]!
    const { request } = toChatRequest(parseMessagesRequest(body))
    expect(request.messages).toHaveLength(4)
    expect(request.messages[2]).toEqual({
      role: 'assistant',
      content: 'Let me check.',
      tool_calls: [{ id: 'toolu_01Abc', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"c"}' } }],
    })
    expect(request.messages[3]).toEqual({
      role: 'tool',
      tool_call_id: 'toolu_01Abc',
      content:
        'Error: <tool_use_error>Error: No such tool available: get_weather</tool_use_error>\n\n<system-reminder>\n<total_tokens>14999970 tokens left</total_tokens>\n</system-reminder>',
    })
    expect(chatRequestSchema.safeParse(request).success).toBe(true)
  })
})

describe('Messages request schema', () => {
  const base = { model: 'm', max_tokens: 16 }

  it('names the parameter of a malformed block inside a union', () => {
    const err = refusal(() => parseMessagesRequest({ ...base, messages: [user([{ type: 'text', text: 'a' }, { type: 'text' }])] }))
    expect(err.status).toBe(400)
    expect(err.param).toBe('messages[0].content[1].text')
    expect(err.message).toBe("Missing required parameter: 'messages[0].content[1].text'.")
  })

  it('names nested parameters: a tool result image source, a tool schema, a thinking budget', () => {
    const image = { type: 'image', source: { type: 'base64', data: 'AAAA' } }
    expect(refusal(() => parseMessagesRequest({ ...base, messages: [user([{ type: 'tool_result', tool_use_id: 't', content: [image] }])] })).param).toBe(
      'messages[0].content[0].content[0].source.media_type',
    )
    expect(refusal(() => parseMessagesRequest({ ...base, messages: [user('x')], tools: [{ name: 'a' }] })).param).toBe('tools[0].input_schema')
    const budget = refusal(() => parseMessagesRequest({ ...base, messages: [user('x')], thinking: { type: 'enabled', budget_tokens: 100 } }))
    expect(budget.param).toBe('thinking.budget_tokens')
  })

  it('says what content may be when it is neither a string nor blocks', () => {
    const err = refusal(() => parseMessagesRequest({ ...base, messages: [user(5)] }))
    expect(err.message).toBe("Invalid type for 'messages[0].content': expected a string or an array, got a number.")
  })

  it('requires max_tokens for messages but not for count_tokens', () => {
    expect(refusal(() => parseMessagesRequest({ model: 'm', messages: [user('x')] })).message).toBe("Missing required parameter: 'max_tokens'.")
    expect(parseCountTokensRequest({ model: 'm', messages: [user('x')] }).max_tokens).toBeUndefined()
  })

  it('refuses a body that is not an object', () => {
    expect(refusal(() => parseMessagesRequest([1])).code).toBe('invalid_body')
  })

  it('lets unknown block types, sources, tools and fields through untouched (for native providers)', () => {
    const body = {
      ...base,
      messages: [user([{ type: 'container_upload', file_id: 'f1' }, { type: 'image', source: { type: 'future', ref: 1 } }])],
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }],
      speed: 'fast',
    }
    expect(parseMessagesRequest(body)).toEqual(body)
  })
})

describe('Messages request -> chat request', () => {
  it('maps a plain conversation and the sampling parameters', () => {
    const { request, dropped } = translate({
      system: 'Be brief.',
      messages: [user('Hi'), { role: 'assistant', content: 'Hello!' }, user('Bye')],
      temperature: 0.3,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ['END'],
      metadata: { user_id: 'u-1' },
    })
    expect(request).toEqual({
      model: 'claude-x',
      max_completion_tokens: 1024,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Bye' },
      ],
      temperature: 0.3,
      top_p: 0.9,
      stop: ['END'],
      user: 'u-1',
    })
    expect(dropped).toEqual(['top_k'])
  })

  it('maps images as image_url parts (data URL or URL) and PDFs as file parts', () => {
    const { request } = translate({
      messages: [
        user([
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBER' }, title: 'report' },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'plain words' }, title: 'Notes' },
          { type: 'text', text: 'Describe them.', cache_control: { type: 'ephemeral' } },
        ]),
      ],
    })
    expect(request.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          { type: 'file', file: { filename: 'report.pdf', file_data: 'data:application/pdf;base64,JVBER' } },
          { type: 'text', text: 'Notes\n\nplain words' },
          { type: 'text', text: 'Describe them.' },
        ],
      },
    ])
  })

  it('puts tool results first, in order, then the rest of the user turn; images of a result follow in the user message', () => {
    const { request } = translate({
      messages: [
        user('Weather in Paris and Rome?'),
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'Two cities.', signature: 'sig-1' },
            { type: 'tool_use', id: 'call_a', name: 'weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: 'call_b', name: 'weather', input: { city: 'Rome' } },
          ],
        },
        user([
          { type: 'text', text: 'Here you go.' },
          { type: 'tool_result', tool_use_id: 'call_a', content: [{ type: 'text', text: 'Sunny' }, { type: 'text', text: '21 C' }] },
          { type: 'tool_result', tool_use_id: 'call_b', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'QUJD' } }], is_error: false },
        ]),
      ],
    })
    expect(request.messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
        ],
        thinking_blocks: [{ type: 'thinking', thinking: 'Two cities.', signature: 'sig-1' }],
        reasoning: 'Two cities.',
      },
      { role: 'tool', tool_call_id: 'call_a', content: 'Sunny\n21 C' },
      { role: 'tool', tool_call_id: 'call_b', content: '' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Here you go.' },
          { type: 'text', text: 'Attachments of the result of tool call call_b:' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,QUJD' } },
        ],
      },
    ])
    expect(chatRequestSchema.safeParse(request).success).toBe(true)
  })

  it('carries redacted thinking as a thinking block without reasoning text', () => {
    const { request } = translate({
      messages: [user('Hi'), { role: 'assistant', content: [{ type: 'redacted_thinking', data: 'opaque' }, { type: 'text', text: 'Hello' }] }, user('And?')],
    })
    expect(request.messages[1]).toEqual({ role: 'assistant', content: 'Hello', thinking_blocks: [{ type: 'redacted_thinking', data: 'opaque' }] })
  })

  it('maps tool_choice, and disable_parallel_tool_use to parallel_tool_calls false', () => {
    const tools = [{ name: 'weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, strict: true }]
    const choice = (tool_choice: unknown) => translate({ messages: [user('x')], tools, tool_choice }).request
    expect(choice({ type: 'auto' })).toMatchObject({ tool_choice: 'auto' })
    expect(choice({ type: 'auto' }).parallel_tool_calls).toBeUndefined()
    expect(choice({ type: 'any', disable_parallel_tool_use: true })).toMatchObject({ tool_choice: 'required', parallel_tool_calls: false })
    expect(choice({ type: 'tool', name: 'weather' })).toMatchObject({ tool_choice: { type: 'function', function: { name: 'weather' } } })
    expect(choice({ type: 'none' })).toMatchObject({ tool_choice: 'none' })
    expect(choice({ type: 'auto' }).tools).toEqual([
      { type: 'function', function: { name: 'weather', description: 'Weather', parameters: tools[0]!.input_schema, strict: true } },
    ])
  })

  it('leaves tool_choice out when no tool is sent (OpenAI refuses it then)', () => {
    const { request } = translate({ messages: [user('x')], tools: [{ name: 'later', input_schema: { type: 'object' }, defer_loading: true }], tool_choice: { type: 'any' } })
    expect(request.tools).toBeUndefined()
    expect(request.tool_choice).toBeUndefined()
  })

  it('sends a deferred tool once a tool_reference in a tool result has loaded it', () => {
    const { request } = translate({
      messages: [
        user('Find the cron tool'),
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'ToolSearch', input: { query: 'cron' } }] },
        user([{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'tool_reference', tool_name: 'CronCreate' }] }]),
      ],
      tools: [
        { name: 'ToolSearch', input_schema: { type: 'object' } },
        { name: 'CronCreate', input_schema: { type: 'object' }, defer_loading: true },
        { name: 'CronDelete', input_schema: { type: 'object' }, defer_loading: true },
      ],
    })
    expect(request.tools!.map((t) => t.function.name)).toEqual(['ToolSearch', 'CronCreate'])
    expect(request.messages[2]).toEqual({ role: 'tool', tool_call_id: 't1', content: "Tool 'CronCreate' is now available." })
  })

  it('maps the thinking budget (and output_config.effort, which wins) to reasoning_effort', () => {
    const effort = (extra: Record<string, unknown>) => translate({ messages: [user('x')], ...extra }).request.reasoning_effort
    expect(effort({ thinking: { type: 'enabled', budget_tokens: 1024 } })).toBe('minimal')
    expect(effort({ thinking: { type: 'enabled', budget_tokens: 2048 } })).toBe('low')
    expect(effort({ thinking: { type: 'enabled', budget_tokens: 8000 } })).toBe('medium')
    expect(effort({ thinking: { type: 'enabled', budget_tokens: 31999 } })).toBe('high')
    expect(effort({ thinking: { type: 'disabled' } })).toBeUndefined()
    expect(effort({ thinking: { type: 'adaptive' } })).toBeUndefined()
    expect(effort({ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } })).toBe('low')
    expect(effort({ thinking: { type: 'enabled', budget_tokens: 1024 }, output_config: { effort: 'max' } })).toBe('high')
  })

  it('sends the first 4 stop sequences and reports the rest', () => {
    const { request, dropped } = translate({ messages: [user('x')], stop_sequences: ['a', 'b', 'c', 'd', 'e'] })
    expect(request.stop).toEqual(['a', 'b', 'c', 'd'])
    expect(dropped).toEqual(['stop_sequences'])
  })

  it('maps a structured output format to a json_schema response_format', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false }
    const { request } = translate({ messages: [user('x')], output_config: { format: { type: 'json_schema', schema } } })
    expect(request.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'output', schema, strict: true } })
  })

  it('reports fields it cannot honour and drops cache_control silently', () => {
    const { dropped } = translate({ messages: [user('x')], service_tier: 'auto', inference_geo: 'us', cache_control: { type: 'ephemeral' }, top_k: null })
    expect(dropped.sort()).toEqual(['inference_geo', 'service_tier'])
  })

  it('refuses, naming them, what only Anthropic can serve', () => {
    const webSearch = refusal(() => translate({ messages: [user('x')], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }))
    expect(webSearch.status).toBe(400)
    expect(webSearch.param).toBe('tools[0]')
    expect(webSearch.message).toContain("Tool 'web_search' (type 'web_search_20250305') is defined by Anthropic")
    expect(refusal(() => translate({ messages: [user('x')], mcp_servers: [{ type: 'url', url: 'https://mcp.example', name: 'x' }] })).param).toBe('mcp_servers')
    expect(refusal(() => translate({ max_tokens: 0, messages: [user('x')] })).param).toBe('max_tokens')
    expect(refusal(() => translate({ messages: [user([{ type: 'image', source: { type: 'file', file_id: 'file_1' } }])] })).param).toBe('messages[0].content[0].source.type')
    expect(refusal(() => translate({ messages: [user([{ type: 'container_upload', file_id: 'f' }])] })).param).toBe('messages[0].content[0].type')
  })
})
