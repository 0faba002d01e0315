import { describe, expect, it } from 'vitest'
import { chatRequestSchema } from '../../../../src/core/openai-schema.js'
import { parseResponsesRequest, type InputItem } from '../../../../src/core/responses-schema.js'
import { toChatRequest, type TranslateOptions } from '../../../../src/server/responses/request.js'
import { encodeThinking } from '../../../../src/server/responses/thinking-codec.js'
import { refusal } from './fixtures.js'
import { readTestdata, testdataDir, testdataLocation } from '../../../helpers/testdata.js'

if (testdataDir === null) console.warn(`[responses request.test] SKIPPING the codex.json cases: shared test data not found at ${testdataLocation}.`)

function translate(body: Record<string, unknown>, opts?: TranslateOptions) {
  return toChatRequest(parseResponsesRequest({ model: 'm', ...body }), opts)
}

const WEATHER = { type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { location: { type: 'string' } } }, strict: true }

describe.skipIf(testdataDir === null)('Codex CLI requests (codex.json)', () => {
  const captured = () => JSON.parse(readTestdata('agents/codex.json')) as Array<{ url: string; body: Record<string, unknown> }>

  it('validates and translates every captured request into a valid chat request', () => {
    for (const { url, body } of captured()) {
      expect(url).toBe('/v1/responses')
      const { chat } = toChatRequest(parseResponsesRequest(body))
      expect(chatRequestSchema.safeParse(chat).success).toBe(true)
    }
  })

  it('turns the developer messages into system messages, in order, before the user turn', () => {
    const { chat } = toChatRequest(parseResponsesRequest(captured()[0]!.body))
    expect(chat.messages.map((m) => m.role)).toEqual(['system', 'system', 'user', 'user'])
    expect(chat.messages[0]!.content).toMatch(/^You are a coding agent running in the Codex CLI/)
    expect(chat.messages[3]).toEqual({ role: 'user', content: 'what is the weather in Paris?' })
  })

  it('maps the 9 tools: 7 functions as they are, the namespace flattened, web_search dropped and reported', () => {
    const { chat, dropped } = toChatRequest(parseResponsesRequest(captured()[0]!.body))
    expect(chat.tools!.map((t) => t.function.name)).toEqual([
      'exec_command', 'write_stdin', 'request_user_input', 'view_image',
      'multi_agent_v1__close_agent', 'multi_agent_v1__resume_agent', 'multi_agent_v1__send_input', 'multi_agent_v1__spawn_agent', 'multi_agent_v1__wait_agent',
      'get_goal', 'create_goal', 'update_goal',
    ])
    const exec = chat.tools![0]!.function
    expect(exec.strict).toBe(false)
    expect(exec.parameters).toMatchObject({ type: 'object', properties: { cmd: { type: 'string' } } })
    expect(chat.tool_choice).toBe('auto')
    expect(chat.parallel_tool_calls).toBe(true)
    expect(dropped).toEqual(['tools[8]:web_search'])
  })

  it('asks for a streamed answer with usage, without reasoning_effort (Codex sends a summary mode only)', () => {
    const { chat } = toChatRequest(parseResponsesRequest(captured()[0]!.body))
    expect(chat.stream).toBe(true)
    expect(chat.stream_options).toEqual({ include_usage: true })
    expect(chat.reasoning_effort).toBeUndefined()
  })

  it('keeps store, include, prompt_cache_key and client_metadata away from the upstream without reporting them', () => {
    const { chat, dropped } = toChatRequest(parseResponsesRequest(captured()[1]!.body))
    for (const param of ['store', 'include', 'prompt_cache_key', 'client_metadata', 'reasoning', 'input', 'instructions']) expect(chat).not.toHaveProperty(param)
    expect(dropped).toEqual(['tools[8]:web_search'])
  })

  it('turns the second request\'s function_call and function_call_output into a tool call turn', () => {
    const { chat } = toChatRequest(parseResponsesRequest(captured()[1]!.body))
    expect(chat.messages.slice(-2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_fake1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_fake1', content: 'unsupported call: get_weather' },
    ])
  })
})

describe('Responses request -> chat request', () => {
  it('puts instructions first as a system message and a string input as the user message', () => {
    const { chat, dropped } = translate({ instructions: 'Be brief.', input: 'Hi' })
    expect(chat).toEqual({ model: 'm', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] })
    expect(dropped).toEqual([])
  })

  it('maps the sampling, length, reasoning, format, verbosity and user parameters', () => {
    const { chat } = translate({
      input: 'Hi',
      max_output_tokens: 500,
      temperature: 0.2,
      top_p: 0.9,
      reasoning: { effort: 'low', summary: 'detailed' },
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true }, verbosity: 'low' },
      safety_identifier: 'user-42',
    })
    expect(chat).toMatchObject({
      max_completion_tokens: 500,
      temperature: 0.2,
      top_p: 0.9,
      reasoning_effort: 'low',
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: true } },
      verbosity: 'low',
      user: 'user-42',
    })
    expect(translate({ input: 'Hi', text: { format: { type: 'json_object' } } }).chat.response_format).toEqual({ type: 'json_object' })
    expect(translate({ input: 'Hi', text: { format: { type: 'text' } } }).chat).not.toHaveProperty('response_format')
    expect(translate({ input: 'Hi', reasoning: { effort: 'xhigh' } }).chat.reasoning_effort).toBe('high')
    expect(translate({ input: 'Hi', user: 'u', safety_identifier: 's' }).chat.user).toBe('u')
  })

  it('maps message content parts: text, images by URL, inline files', () => {
    const { chat } = translate({
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is in these?' },
            { type: 'input_image', image_url: 'https://example.com/cat.png', detail: 'low' },
            { type: 'input_file', filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' },
          ],
        },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'A cat and a PDF.' }] },
      ],
    })
    expect(chat.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
          { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=', filename: 'a.pdf' } },
        ],
      },
      { role: 'assistant', content: 'A cat and a PDF.' },
    ])
  })

  it('refuses images and files it cannot send inline, naming the field', () => {
    expect(refusal(() => translate({ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1', detail: 'auto' }] }] })).param).toBe('input[0].content[0].file_id')
    expect(refusal(() => translate({ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }] })).param).toBe('input[0].content[0].file_id')
    expect(refusal(() => translate({ input: [{ role: 'user', content: [{ type: 'input_file', file_url: 'https://example.com/a.pdf' }] }] })).param).toBe('input[0].content[0].file_url')
    expect(refusal(() => translate({ input: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] })).param).toBe('input[0].content[0].type')
  })

  it('joins an assistant message and the function calls after it into one message, and answers them with tool messages', () => {
    const { chat } = translate({
      tools: [WEATHER],
      input: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Looking.' }] },
        { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"location":"Paris"}' },
        { type: 'function_call', call_id: 'c2', name: 'get_weather', arguments: '{"location":"Rome"}' },
        { type: 'function_call_output', call_id: 'c1', output: '18C' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: '25C' }] },
      ],
    })
    expect(chat.messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: 'Looking.',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
          { id: 'c2', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Rome"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: '18C' },
      { role: 'tool', tool_call_id: 'c2', content: [{ type: 'text', text: '25C' }] },
    ])
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER.parameters, strict: true } }])
  })

  it('puts a reasoning item on the next assistant message: summary as reasoning, our encrypted content as thinking blocks', () => {
    const blocks = [{ type: 'thinking' as const, thinking: 'The user wants weather.', signature: 'sig-abc' }, { type: 'redacted_thinking' as const, data: 'opaque' }]
    const { chat, dropped } = translate({
      input: [
        { role: 'user', content: 'Weather?' },
        { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'The user wants weather.' }], encrypted_content: encodeThinking(blocks) },
        { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: '18C' },
      ],
    })
    expect(chat.messages[1]).toEqual({
      role: 'assistant',
      content: null,
      reasoning: 'The user wants weather.',
      thinking_blocks: blocks,
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }],
    })
    expect(dropped).toEqual([])
  })

  it('drops encrypted content it did not make (OpenAI\'s) and reports it, keeping the summary', () => {
    const { chat, dropped } = translate({
      input: [
        { role: 'user', content: 'Hi' },
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Greeting.' }], encrypted_content: 'gAAAAABopenai-own-token' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Again' },
      ],
    })
    expect(chat.messages[1]).toEqual({ role: 'assistant', content: 'Hello!', reasoning: 'Greeting.' })
    expect(dropped).toEqual(['input[1].encrypted_content'])
  })

  it('maps custom tools to a one-string function, and their calls and outputs both ways', () => {
    const { chat, dropped } = translate({
      tools: [{ type: 'custom', name: 'apply_patch', description: 'Apply a patch.', format: { type: 'grammar', syntax: 'lark', definition: 'start: "*** Begin Patch"' } }],
      input: [
        { role: 'user', content: 'Fix it' },
        { type: 'custom_tool_call', call_id: 'c1', name: 'apply_patch', input: '*** Begin Patch' },
        { type: 'custom_tool_call_output', call_id: 'c1', output: 'Done' },
      ],
    })
    const fn = chat.tools![0]!.function
    expect(fn.name).toBe('apply_patch')
    expect(fn.description).toContain('Apply a patch.')
    expect(fn.description).toContain('lark grammar:\nstart: "*** Begin Patch"')
    expect(fn.parameters).toMatchObject({ properties: { input: { type: 'string' } }, required: ['input'] })
    expect(chat.messages[1]!.tool_calls).toEqual([{ id: 'c1', type: 'function', function: { name: 'apply_patch', arguments: '{"input":"*** Begin Patch"}' } }])
    expect(chat.messages[2]).toEqual({ role: 'tool', tool_call_id: 'c1', content: 'Done' })
    expect(dropped).toEqual(['tools[0].format'])
  })

  it('maps tool_choice: modes, a named function (also inside a namespace), allowed_tools', () => {
    const tools = [WEATHER, { type: 'namespace', name: 'crm', description: 'CRM', tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object' } }] }]
    expect(translate({ input: 'x', tools, tool_choice: 'required' }).chat.tool_choice).toBe('required')
    expect(translate({ input: 'x', tools, tool_choice: { type: 'function', name: 'get_weather' } }).chat.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } })
    expect(translate({ input: 'x', tools, tool_choice: { type: 'function', name: 'lookup' } }).chat.tool_choice).toEqual({ type: 'function', function: { name: 'crm__lookup' } })
    const allowed = translate({ input: 'x', tools, tool_choice: { type: 'allowed_tools', mode: 'required', tools: [{ type: 'function', name: 'lookup' }] } }).chat
    expect(allowed.tools!.map((t) => t.function.name)).toEqual(['crm__lookup'])
    expect(allowed.tool_choice).toBe('required')
    expect(refusal(() => translate({ input: 'x', tools, tool_choice: { type: 'function', name: 'nope' } })).param).toBe('tool_choice.name')
  })

  it('refuses a hosted tool the request depends on, naming the tool', () => {
    const forced = refusal(() => translate({ input: 'x', tools: [{ type: 'web_search_preview' }], tool_choice: { type: 'web_search_preview' } }))
    expect(forced.status).toBe(400)
    expect(forced.param).toBe('tool_choice.type')
    expect(forced.code).toBe('unsupported_tool')
    expect(forced.message).toContain("'web_search_preview'")
    const required = refusal(() => translate({ input: 'x', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }], tool_choice: 'required' }))
    expect(required.message).toContain("'file_search'")
  })

  it('refuses built-in tools whose calls only OpenAI\'s models make, naming the tool', () => {
    const err = refusal(() => translate({ input: 'x', tools: [WEATHER, { type: 'local_shell' }] }))
    expect(err.param).toBe('tools[1]')
    expect(err.message).toContain("'local_shell'")
  })

  it('drops an offered hosted tool: no tools and no tool_choice left when it was the only one', () => {
    const { chat, dropped } = translate({ input: 'x', tools: [{ type: 'mcp', server_label: 'deepwiki' }], tool_choice: 'auto' })
    expect(chat).not.toHaveProperty('tools')
    expect(chat).not.toHaveProperty('tool_choice')
    expect(dropped).toEqual(['tools[0]:mcp'])
  })

  it('reports what it cannot honour, and refuses what needs OpenAI\'s stored state', () => {
    const { dropped } = translate({
      input: 'x',
      include: ['reasoning.encrypted_content', 'message.output_text.logprobs'],
      truncation: 'auto',
      service_tier: 'flex',
      top_logprobs: 3,
      max_tool_calls: 2,
      some_new_param: true,
      prompt_cache_key: 'k',
      metadata: { a: 'b' },
      store: false,
    })
    expect(dropped.sort()).toEqual(['include:message.output_text.logprobs', 'max_tool_calls', 'service_tier', 'some_new_param', 'top_logprobs', 'truncation'])
    expect(refusal(() => translate({ input: 'x', background: true })).param).toBe('background')
    expect(refusal(() => translate({ input: 'x', conversation: 'conv_1' })).param).toBe('conversation')
  })

  it('reports input items with no chat form (hosted tool calls, compaction) and goes on', () => {
    const { chat, dropped } = translate({ input: [{ type: 'web_search_call', id: 'ws_1', status: 'completed' }, { role: 'user', content: 'Hi' }] })
    expect(chat.messages).toEqual([{ role: 'user', content: 'Hi' }])
    expect(dropped).toEqual(['input[0]:web_search_call'])
  })

  it('puts the earlier turns (previous_response_id) first and resolves item references', () => {
    const history: InputItem[] = [
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
      { type: 'message', id: 'msg_1', role: 'assistant', content: [{ type: 'output_text', text: 'Hello!' }] },
    ]
    const { chat } = translate({ instructions: 'Be nice.', previous_response_id: 'resp_1', input: [{ type: 'item_reference', id: 'msg_1' }, { role: 'user', content: 'Again' }] }, { history })
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Be nice.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Again' },
    ])
    const missing = refusal(() => translate({ input: [{ id: 'msg_404' }] }))
    expect(missing.status).toBe(404)
    expect(missing.param).toBe('input[0]')
  })

  it('says why when every input item was left out, and still calls no input missing', () => {
    const dropped = refusal(() => translate({ input: [{ type: 'web_search_call', id: 'ws_1', status: 'completed' }, { type: 'mcp_list_tools' }] }))
    expect(dropped.status).toBe(400)
    expect(dropped.param).toBe('input')
    expect(dropped.message).toContain('input[0]:web_search_call, input[1]:mcp_list_tools')
    expect(refusal(() => translate({ input: [] })).message).toBe("Missing required parameter: 'input'.")
  })

  it('names the parameter of a type error', () => {
    const err = refusal(() => parseResponsesRequest({ model: 'm', input: [{ type: 'function_call_output', output: 'x' }] }))
    expect(err.param).toBe('input[0].call_id')
    expect(err.message).toBe("Missing required parameter: 'input[0].call_id'.")
    const wrong = refusal(() => parseResponsesRequest({ model: 'm', input: 'x', temperature: 'hot' }))
    expect(wrong.param).toBe('temperature')
    expect(wrong.message).toBe("Invalid type for 'temperature': expected a number, got a string.")
    expect(refusal(() => parseResponsesRequest({ model: 'm', tools: [{ type: 'function', parameters: {} }] })).param).toBe('tools[0].name')
    expect(refusal(() => translate({})).param).toBe('input')
  })
})
