import { afterEach, describe, expect, it } from 'vitest'
import type { ChatCompletion } from '../../../../src/core/openai-schema.js'
import { toMessage, type AnswerOptions } from '../../../../src/server/messages/response.js'
import { fromMessagesUsage, messageUsage, StreamUsage, toMessagesUsage } from '../../../../src/server/messages/usage.js'
import { readTestdata, testdataDir } from '../../../helpers/testdata.js'
import { startSdkHarness, type SdkHarness } from './sdk-server.js'

type Message = ChatCompletion['choices'][number]['message']

function completion(message: Partial<Message>, finish_reason: ChatCompletion['choices'][number]['finish_reason'], extra: Record<string, unknown> = {}): ChatCompletion {
  return {
    id: 'chatcmpl-B9xyz',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-x',
    choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, ...message }, finish_reason, logprobs: null, ...extra }],
    usage: { prompt_tokens: 1000, completion_tokens: 50, total_tokens: 1050, prompt_tokens_details: { cached_tokens: 600, cache_creation_tokens: 300 } },
  }
}

const OPTS: AnswerOptions = { model: 'claude-x' }

describe('chat completion -> Message', () => {
  it('maps text, the id, the client\'s model and usage (input without cache reads and writes)', () => {
    expect(toMessage(completion({ content: 'Hello!' }, 'stop'), OPTS)).toEqual({
      id: 'msg_B9xyz',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: 'Hello!' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 600, cache_creation_input_tokens: 300 },
    })
  })

  it('orders thinking, text, then tool_use blocks with parsed inputs', () => {
    const message = toMessage(
      completion(
        {
          content: 'Checking both.',
          reasoning: 'Two cities.',
          thinking_blocks: [{ type: 'thinking', thinking: 'Two cities.', signature: 'sig' }],
          tool_calls: [
            { id: 'call_a', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '' } },
          ],
        },
        'tool_calls',
      ),
      OPTS,
    )
    expect(message.content).toEqual([
      { type: 'thinking', thinking: 'Two cities.', signature: 'sig' },
      { type: 'text', text: 'Checking both.' },
      { type: 'tool_use', id: 'call_a', name: 'weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_b', name: 'weather', input: {} },
    ])
    expect(message.stop_reason).toBe('tool_use')
  })

  it('turns reasoning text without blocks into a thinking block, and fills blocks that carry no text', () => {
    expect(toMessage(completion({ content: 'x', reasoning_content: 'Hmm.' }, 'stop'), OPTS).content[0]).toEqual({ type: 'thinking', thinking: 'Hmm.', signature: '' })
    const filled = toMessage(completion({ content: 'x', reasoning: 'Hmm.', thinking_blocks: [{ type: 'thinking', thinking: '', signature: 's' }] }, 'stop'), OPTS)
    expect(filled.content[0]).toEqual({ type: 'thinking', thinking: 'Hmm.', signature: 's' })
  })

  it('keeps arguments that are not a JSON object as _raw_arguments', () => {
    const message = toMessage(
      completion({ tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a": 1' } }, { id: 'd', type: 'function', function: { name: 'f', arguments: '[1]' } }] }, 'tool_calls'),
      OPTS,
    )
    expect(message.content).toEqual([
      { type: 'tool_use', id: 'c', name: 'f', input: { _raw_arguments: '{"a": 1' } },
      { type: 'tool_use', id: 'd', name: 'f', input: { _raw_arguments: '[1]' } },
    ])
  })

  it('maps each finish reason to its stop_reason', () => {
    const stop = (finish: ChatCompletion['choices'][number]['finish_reason'], message: Partial<Message> = { content: 'x' }, extra = {}, stops?: string[]) =>
      toMessage(completion(message, finish, extra), { model: 'm', stopSequences: stops })
    expect(stop('length').stop_reason).toBe('max_tokens')
    expect(stop('content_filter').stop_reason).toBe('refusal')
    expect(stop('stop', { content: null, refusal: 'I cannot help with that.' })).toMatchObject({ stop_reason: 'refusal', content: [{ type: 'text', text: 'I cannot help with that.' }] })
    expect(stop('stop', { tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }).stop_reason).toBe('tool_use')
    expect(stop('stop', { content: 'x' }, { stop_reason: 'END' }, ['END'])).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' })
    expect(stop('stop', { content: 'x' }, { stop_reason: 'END' }, ['OTHER'])).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null })
    expect(stop(null).stop_reason).toBe('end_turn')
  })
})

describe('Messages usage <-> gateway usage', () => {
  it('round-trips, prompt_tokens counting cache reads and writes', () => {
    const usage = fromMessagesUsage({ input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 200, cache_creation_input_tokens: 30 })
    expect(usage).toEqual({ prompt_tokens: 240, completion_tokens: 5, total_tokens: 245, prompt_tokens_details: { cached_tokens: 200, cache_creation_tokens: 30 } })
    expect(toMessagesUsage(usage)).toEqual({ input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 200, cache_creation_input_tokens: 30 })
    expect(toMessagesUsage(undefined)).toEqual({ input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 })
  })

  it.skipIf(!testdataDir)('reads a recorded Message and a recorded stream', () => {
    const message = JSON.parse(readTestdata('anthropic/message.json')) as Record<string, unknown>
    expect(messageUsage(message)).toEqual({ prompt_tokens: 701, completion_tokens: 93, total_tokens: 794, prompt_tokens_details: { cached_tokens: 0, cache_creation_tokens: 0 } })
    const tracker = new StreamUsage()
    expect(tracker.usage).toBeNull()
    for (const line of readTestdata('anthropic/stream.txt').split('\n')) {
      if (line.startsWith('data: ')) tracker.observe(JSON.parse(line.slice(6)) as { type: string })
    }
    // message_start: 377 in, 1 out; message_delta: 65 out
    expect(tracker.usage).toEqual({ prompt_tokens: 377, completion_tokens: 65, total_tokens: 442, prompt_tokens_details: { cached_tokens: 0, cache_creation_tokens: 0 } })
  })

  it('reports no usage for a stream that ended before its message_delta (message_start counts only the input)', () => {
    const tracker = new StreamUsage()
    tracker.observe({ type: 'message_start', message: { usage: { input_tokens: 472, output_tokens: 2 } } })
    tracker.observe({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'A long answer, cut off' } })
    expect(tracker.usage).toBeNull()
  })

  it('takes input counts that a message_delta updates', () => {
    const tracker = new StreamUsage()
    tracker.observe({ type: 'message_start', message: { usage: { input_tokens: 5, output_tokens: 1, cache_read_input_tokens: 100 } } })
    tracker.observe({ type: 'ping' })
    tracker.observe({ type: 'message_delta', usage: { output_tokens: 40, input_tokens: 7 } })
    expect(tracker.usage).toMatchObject({ prompt_tokens: 107, completion_tokens: 40, prompt_tokens_details: { cached_tokens: 100 } })
  })
})

describe('Message through the official Anthropic SDK (messages.create)', () => {
  let harness: SdkHarness | null = null
  afterEach(async () => {
    await harness?.close()
    harness = null
  })

  it('parses the translated answer as a Message', async () => {
    const answer = completion(
      { content: 'Checking.', reasoning: 'Need the tool.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
      'tool_calls',
    )
    harness = await startSdkHarness((body) => ({ kind: 'json', body: toMessage(answer, { model: body.model as string }) }))
    const message = await harness.client.messages.create({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'Weather?' }] })
    expect(message).toEqual({
      id: 'msg_B9xyz',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [
        { type: 'thinking', thinking: 'Need the tool.', signature: '' },
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { location: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 600, cache_creation_input_tokens: 300 },
    })
  })
})
