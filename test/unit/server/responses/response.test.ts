import { describe, expect, it } from 'vitest'
import { ProxyError } from '../../../../src/core/errors.js'
import type { ChatCompletion } from '../../../../src/core/openai-schema.js'
import { parseResponsesRequest, type InputItem } from '../../../../src/core/responses-schema.js'
import { responsesShape } from '../../../../src/server/responses/shape.js'
import { toChatRequest } from '../../../../src/server/responses/request.js'
import { toResponse } from '../../../../src/server/responses/response.js'
import { decodeThinking, withoutProxyReasoning } from '../../../../src/server/responses/thinking-codec.js'
import { toResponsesUsage, usageOfEvent, usageOfResponse } from '../../../../src/server/responses/usage.js'
import { USAGE } from './fixtures.js'

const request = (body: Record<string, unknown> = {}) => parseResponsesRequest({ model: 'my-claude', input: 'Hi', ...body })

function completion(message: Record<string, unknown>, finish_reason: ChatCompletion['choices'][number]['finish_reason'] = 'stop', usage = USAGE): ChatCompletion {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'claude-upstream',
    choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, ...message }, finish_reason, logprobs: null }],
    usage,
  }
}

const WEATHER = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } }, strict: true }

describe('chat completion -> Response', () => {
  it('gives a text answer as a completed Response with a message item, output_text and usage', () => {
    const res = toResponse(completion({ content: 'Hello there.' }), request({ instructions: 'Be brief.', temperature: 0.5, metadata: { app: 'x' } }), { id: 'resp_fixed', createdAt: 1700000000 })
    expect(res).toMatchObject({
      id: 'resp_fixed',
      object: 'response',
      created_at: 1700000000,
      status: 'completed',
      error: null,
      incomplete_details: null,
      model: 'my-claude',
      instructions: 'Be brief.',
      temperature: 0.5,
      top_p: 1,
      tool_choice: 'auto',
      tools: [],
      parallel_tool_calls: true,
      store: true,
      metadata: { app: 'x' },
      text: { format: { type: 'text' } },
      output_text: 'Hello there.',
      usage: {
        input_tokens: 120,
        input_tokens_details: { cached_tokens: 100, cache_write_tokens: 8 },
        output_tokens: 40,
        output_tokens_details: { reasoning_tokens: 12 },
        total_tokens: 160,
      },
    })
    expect(res.completed_at).toBeGreaterThanOrEqual(1700000000)
    expect(res.output).toEqual([
      { id: expect.stringMatching(/^msg_/), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello there.', annotations: [], logprobs: [] }] },
    ])
  })

  it('gives tool calls as function_call items (call_id from the tool call id), restoring namespaces and custom tools', () => {
    const req = request({
      tools: [WEATHER, { type: 'namespace', name: 'crm', description: 'CRM', tools: [{ type: 'function', name: 'lookup' }] }, { type: 'custom', name: 'apply_patch' }],
    })
    const res = toResponse(
      completion(
        {
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'crm__lookup', arguments: '{}' } },
            { id: 'call_3', type: 'function', function: { name: 'apply_patch', arguments: '{"input":"*** Begin Patch"}' } },
          ],
        },
        'tool_calls',
      ),
      req,
    )
    expect(res.status).toBe('completed')
    expect(res.output_text).toBe('')
    expect(res.output).toEqual([
      { id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: '{"location":"Paris"}' },
      { id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_2', name: 'lookup', namespace: 'crm', arguments: '{}' },
      { id: expect.stringMatching(/^ctc_/), type: 'custom_tool_call', call_id: 'call_3', name: 'apply_patch', input: '*** Begin Patch' },
    ])
  })

  it('is incomplete (max_output_tokens) when the answer was cut at the length limit', () => {
    const res = toResponse(completion({ content: 'Once upon a' }, 'length'), request({ max_output_tokens: 16 }))
    expect(res.status).toBe('incomplete')
    expect(res.incomplete_details).toEqual({ reason: 'max_output_tokens' })
    expect(res.completed_at).toBeNull()
    expect(res.max_output_tokens).toBe(16)
    expect(res.output[0]).toMatchObject({ type: 'message', status: 'incomplete' })
  })

  it('has no usage when the upstream reported none', () => {
    const c = completion({ content: 'x' })
    delete c.usage
    expect(toResponse(c, request())).not.toHaveProperty('usage')
  })

  it('round-trips thinking blocks: reasoning item -> next request -> the same blocks and signature', () => {
    const blocks = [{ type: 'thinking', thinking: 'Paris is in France.', signature: 'EqQBCkgIARABGAIiQ' }, { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va' }]
    const first = request({ tools: [WEATHER], store: false, include: ['reasoning.encrypted_content'] })
    const res = toResponse(
      completion({ reasoning: 'Paris is in France.', thinking_blocks: blocks, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] }, 'tool_calls'),
      first,
    )
    const reasoning = res.output[0]!
    expect(reasoning).toMatchObject({ type: 'reasoning', summary: [{ type: 'summary_text', text: 'Paris is in France.' }], encrypted_content: expect.stringMatching(/^proxy-thinking\.v1:/) })

    // what Codex does next: send the output items back, with the tool's answer
    const input = [{ role: 'user', content: 'Weather in Paris?' }, ...res.output, { type: 'function_call_output', call_id: 'toolu_1', output: '18C' }] as InputItem[]
    const { chat, dropped } = toChatRequest(request({ tools: [WEATHER], input }))
    expect(dropped).toEqual([])
    expect(chat.messages[1]).toMatchObject({
      role: 'assistant',
      reasoning: 'Paris is in France.',
      thinking_blocks: blocks,
      tool_calls: [{ id: 'toolu_1', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }],
    })
  })

  it('gives a reasoning item with a summary, and our mark with no blocks, when there are no thinking blocks', () => {
    const res = toResponse(completion({ content: '4', reasoning_content: '2+2 is 4.' }), request())
    expect(res.output[0]).toEqual({ id: expect.stringMatching(/^rs_/), type: 'reasoning', summary: [{ type: 'summary_text', text: '2+2 is 4.' }], encrypted_content: expect.any(String) })
    expect(decodeThinking((res.output[0] as { encrypted_content: string }).encrypted_content)).toEqual([])
    expect(res.output[1]).toMatchObject({ type: 'message' })
  })

  it('lets a native call to OpenAI leave out the reasoning items this proxy made, and only those', () => {
    const ours = toResponse(completion({ content: 'x', reasoning: 'r' }), request()).output
    const openai = { type: 'reasoning', id: 'rs_openai', summary: [], encrypted_content: 'gAAAAABo-openai' }
    const input = [{ role: 'user', content: 'Hi' }, ...ours, openai] as InputItem[]
    expect(withoutProxyReasoning(input).map((i) => (i as { type?: string }).type ?? 'message')).toEqual(['message', 'message', 'reasoning'])
    expect(withoutProxyReasoning(input).at(-1)).toBe(openai)
  })
})

describe('usage between the two shapes', () => {
  it('reads a Response\'s usage (native or translated) as the gateway\'s usage', () => {
    expect(usageOfResponse({ usage: toResponsesUsage(USAGE) })).toEqual(USAGE)
    expect(usageOfResponse({ usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } } })).toEqual({
      prompt_tokens: 5,
      completion_tokens: 7,
      total_tokens: 12,
      completion_tokens_details: { reasoning_tokens: 0 },
    })
    expect(usageOfResponse({ usage: null })).toBeNull()
  })

  it('reads the usage of a native stream from its final event only', () => {
    const usage = { input_tokens: 3, output_tokens: 4, total_tokens: 7 }
    expect(usageOfEvent({ type: 'response.completed', response: { usage } })).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
    expect(usageOfEvent({ type: 'response.incomplete', response: { usage } })).toMatchObject({ total_tokens: 7 })
    expect(usageOfEvent({ type: 'response.created', response: { usage: null } })).toBeNull()
    expect(usageOfEvent({ type: 'response.output_text.delta' })).toBeNull()
  })
})

describe('errors', () => {
  it('renders a ProxyError as OpenAI\'s error body with its status', () => {
    const err = new ProxyError({ status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Slow down.' })
    const { status, body } = responsesShape.error(err)
    expect({ status, body: JSON.parse(body) }).toEqual({ status: 429, body: { error: { message: 'Slow down.', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } } })
  })
})
