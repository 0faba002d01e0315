import { describe, expect, it } from 'vitest'
import { ProxyError } from '../../../../src/core/errors.js'
import type { ChatCompletionChunk } from '../../../../src/core/openai-schema.js'
import { parseResponsesRequest } from '../../../../src/core/responses-schema.js'
import { responseFailedEvent } from '../../../../src/server/responses/errors.js'
import { newResponseStream, toResponseEvents, type ResponseEvent } from '../../../../src/server/responses/stream.js'
import { decodeThinking } from '../../../../src/server/responses/thinking-codec.js'
import { chunk, collect, finishChunk, from, USAGE, usageChunk } from './fixtures.js'

const WEATHER = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }

async function run(chunks: ChatCompletionChunk[], body: Record<string, unknown> = {}) {
  const state = newResponseStream(parseResponsesRequest({ model: 'my-model', input: 'Hi', tools: [WEATHER], ...body }), { id: 'resp_test' })
  const events = await collect(toResponseEvents(from(chunks), state))
  wellFormed(events)
  return { events, state, types: events.map((e) => e.type), last: events.at(-1)! as ResponseEvent & { response: Record<string, any> } }
}

/** Numbers count from 0 without gaps; every item is added before its events and done exactly once. */
function wellFormed(events: ResponseEvent[]) {
  expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
  expect(events.slice(0, 2).map((e) => e.type)).toEqual(['response.created', 'response.in_progress'])
  const added = new Set<number>()
  const done = new Set<number>()
  for (const e of events) {
    const index = e.output_index as number | undefined
    if (index === undefined) continue
    if (e.type === 'response.output_item.added') {
      expect(added.has(index)).toBe(false)
      expect(index).toBe(added.size)
      added.add(index)
      continue
    }
    expect(added.has(index)).toBe(true)
    expect(done.has(index)).toBe(false)
    if (e.type === 'response.output_item.done') done.add(index)
  }
  expect([...done].sort()).toEqual([...added].sort())
  expect(['response.completed', 'response.incomplete']).toContain(events.at(-1)!.type)
}

describe('chat chunk stream -> Responses events', () => {
  it('streams text as a message item, then completes with the full Response and the usage that came last', async () => {
    const { types, events, last } = await run([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hello' }), chunk({ content: ' there.' }), finishChunk('stop'), usageChunk(USAGE)])
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ])
    const item = events[2]!.item as { id: string }
    expect(events[2]).toMatchObject({ output_index: 0, item: { type: 'message', status: 'in_progress', role: 'assistant', content: [] } })
    expect(events[3]).toMatchObject({ item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } })
    expect(events[4]).toEqual({ type: 'response.output_text.delta', sequence_number: 4, item_id: item.id, output_index: 0, content_index: 0, delta: 'Hello', logprobs: [] })
    expect(events[6]).toMatchObject({ text: 'Hello there.', logprobs: [] })
    expect(events[8]).toMatchObject({ item: { id: item.id, status: 'completed', content: [{ type: 'output_text', text: 'Hello there.' }] } })
    expect(events[0]).toMatchObject({ response: { id: 'resp_test', status: 'in_progress', model: 'my-model', output: [] } })
    expect(events[0]!.response).not.toHaveProperty('usage')
    expect(last.response).toMatchObject({
      id: 'resp_test',
      status: 'completed',
      output_text: 'Hello there.',
      usage: { input_tokens: 120, input_tokens_details: { cached_tokens: 100 }, output_tokens: 40, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 160 },
    })
  })

  it('streams a function call: the item, argument pieces, then the whole arguments', async () => {
    const { types, events, last } = await run([
      chunk({ role: 'assistant', content: '' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"loca' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'tion":"Paris"}' } }] }),
      finishChunk('tool_calls'),
      usageChunk(USAGE),
    ])
    expect(types.slice(2)).toEqual([
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ])
    expect(events[2]).toMatchObject({ item: { type: 'function_call', status: 'in_progress', call_id: 'call_1', name: 'get_weather', arguments: '' } })
    expect(events[5]).toMatchObject({ name: 'get_weather', arguments: '{"location":"Paris"}' })
    expect(last.response.output).toEqual([{ id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: '{"location":"Paris"}' }])
  })

  it('gives parallel calls arriving interleaved by index each their own item', async () => {
    const { events, last } = await run([
      chunk({ content: 'Checking both.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"location":' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"loc' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }, { index: 1, function: { arguments: 'ation":"Rome"}' } }] }),
      finishChunk('tool_calls'),
      usageChunk(USAGE),
    ])
    expect(last.response.output.map((i: any) => [i.type, i.call_id, i.arguments])).toEqual([
      ['message', undefined, undefined],
      ['function_call', 'call_a', '{"location":"Paris"}'],
      ['function_call', 'call_b', '{"location":"Rome"}'],
    ])
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => [e.output_index, e.delta])
    expect(deltas).toEqual([[1, '{"location":'], [2, '{"loc'], [1, '"Paris"}'], [2, 'ation":"Rome"}']])
    // the message was finished before the first call started
    expect(events.findIndex((e) => e.type === 'response.output_item.done' && e.output_index === 0)).toBeLessThan(events.findIndex((e) => e.type === 'response.output_item.added' && e.output_index === 1))
  })

  it('streams reasoning as summary parts and carries the thinking blocks, with their text, as encrypted content', async () => {
    const { types, events, last } = await run([
      chunk({ reasoning: 'Paris is ' }),
      chunk({ reasoning: 'in France.' }),
      chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig-1' }] }),
      chunk({ reasoning_content: 'Use the tool.' }),
      chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig-2' }] }),
      chunk({ content: 'Let me look.' }),
      finishChunk('stop'),
    ])
    expect(types.slice(2, 12)).toEqual([
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
    ])
    expect(types[12]).toBe('response.output_item.done')
    expect(events.filter((e) => e.type === 'response.reasoning_summary_text.done').map((e) => [e.summary_index, e.text])).toEqual([[0, 'Paris is in France.'], [1, 'Use the tool.']])
    const reasoning = last.response.output[0]
    expect(reasoning.summary).toEqual([{ type: 'summary_text', text: 'Paris is in France.' }, { type: 'summary_text', text: 'Use the tool.' }])
    expect(decodeThinking(reasoning.encrypted_content)).toEqual([
      { type: 'thinking', thinking: 'Paris is in France.', signature: 'sig-1' },
      { type: 'thinking', thinking: 'Use the tool.', signature: 'sig-2' },
    ])
    expect(events[12]).toMatchObject({ item: { encrypted_content: reasoning.encrypted_content } })
    expect(last.response.output[1]).toMatchObject({ type: 'message', content: [{ text: 'Let me look.' }] })
  })

  it('opens a reasoning item for a thinking block that came without text (redacted thinking)', async () => {
    const { last } = await run([chunk({ thinking_blocks: [{ type: 'redacted_thinking', data: 'opaque' }] }), chunk({ content: 'Hi.' }), finishChunk('stop')])
    expect(last.response.output[0]).toMatchObject({ type: 'reasoning', summary: [] })
    expect(decodeThinking(last.response.output[0].encrypted_content)).toEqual([{ type: 'redacted_thinking', data: 'opaque' }])
  })

  it('ends with response.incomplete (max_output_tokens) when the answer was cut at the length limit', async () => {
    const { types, last } = await run([chunk({ content: 'Once upon a' }), finishChunk('length'), usageChunk(USAGE)], { max_output_tokens: 16 })
    expect(types.at(-1)).toBe('response.incomplete')
    expect(last.response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, completed_at: null, max_output_tokens: 16, usage: { total_tokens: 160 } })
    expect(last.response.output[0].status).toBe('incomplete')
  })

  it('ends well formed when the stream stops without a finish reason or usage', async () => {
    const { types, last } = await run([chunk({ content: 'Hel' }), chunk({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'get_weather', arguments: '{}' } }] })])
    expect(types.at(-1)).toBe('response.completed')
    expect(last.response).not.toHaveProperty('usage')
    expect(last.response.output.map((i: any) => i.status)).toEqual(['completed', 'completed'])
  })

  it('names a call whose name came after its id', async () => {
    const { events, last } = await run([chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function' }] }), chunk({ tool_calls: [{ index: 0, function: { name: 'get_weather', arguments: '{}' } }] }), finishChunk('tool_calls')])
    expect(events.find((e) => e.type === 'response.function_call_arguments.done')).toMatchObject({ name: 'get_weather', arguments: '{}' })
    expect(last.response.output[0]).toMatchObject({ call_id: 'call_1', name: 'get_weather' })
  })

  it('ends well formed on an empty stream', async () => {
    const { types, last } = await run([])
    expect(types).toEqual(['response.created', 'response.in_progress', 'response.completed'])
    expect(last.response.output).toEqual([])
  })

  it('gives custom tool calls as custom_tool_call items with the input unwrapped', async () => {
    const { types, events, last } = await run(
      [chunk({ tool_calls: [{ index: 0, id: 'call_p', function: { name: 'apply_patch', arguments: '{"input":"*** Begin' } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: ' Patch"}' } }] }), finishChunk('tool_calls')],
      { tools: [{ type: 'custom', name: 'apply_patch' }] },
    )
    expect(types.slice(2, -1)).toEqual(['response.output_item.added', 'response.custom_tool_call_input.delta', 'response.custom_tool_call_input.done', 'response.output_item.done'])
    expect(events[4]).toMatchObject({ input: '*** Begin Patch' })
    expect(last.response.output).toEqual([{ id: expect.stringMatching(/^ctc_/), type: 'custom_tool_call', call_id: 'call_p', name: 'apply_patch', input: '*** Begin Patch' }])
  })

  it('ends a stream that failed after the first byte with response.failed, carrying the output so far', async () => {
    const state = newResponseStream(parseResponsesRequest({ model: 'my-model', input: 'Hi' }))
    const events: ResponseEvent[] = []
    async function* failing(): AsyncGenerator<ChatCompletionChunk> {
      yield chunk({ content: 'Hel' })
      throw new ProxyError({ status: 502, type: 'upstream_error', code: 'upstream_stream_truncated', message: "Provider 'claude' ended the stream before the message was complete." })
    }
    try {
      for await (const e of toResponseEvents(failing(), state)) events.push(e)
    } catch (err) {
      events.push(responseFailedEvent(err as ProxyError, state))
    }
    const failed = events.at(-1) as ResponseEvent & { response: Record<string, any> }
    expect(failed.type).toBe('response.failed')
    expect(failed.sequence_number).toBe(events.length - 1)
    expect(failed.response).toMatchObject({
      status: 'failed',
      error: { code: 'server_error', message: "Provider 'claude' ended the stream before the message was complete." },
      output: [{ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: 'Hel' }] }],
      output_text: 'Hel',
    })
    const limited = responseFailedEvent(new ProxyError({ status: 429, type: 'rate_limit_error', code: 'upstream_rate_limited', message: 'x' }), newResponseStream(parseResponsesRequest({ model: 'm', input: 'x' })))
    expect((limited.response as { error: unknown }).error).toEqual({ code: 'rate_limit_exceeded', message: 'x' })
  })
})
