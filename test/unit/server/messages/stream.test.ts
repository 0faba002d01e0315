import { afterEach, describe, expect, it } from 'vitest'
import type { ChatCompletionChunk, Usage } from '../../../../src/core/openai-schema.js'
import { toMessageEvents, type MessagesStreamEvent, type StreamOptions } from '../../../../src/server/messages/stream.js'
import { startSdkHarness, type SdkHarness } from './sdk-server.js'

type Delta = Record<string, unknown>

const chunk = (delta: Delta, finish_reason: string | null = null, extra: Record<string, unknown> = {}): ChatCompletionChunk =>
  ({ id: 'chatcmpl-abc123', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta, finish_reason, logprobs: null, ...extra }] }) as ChatCompletionChunk

const usageChunk = (usage: Usage): ChatCompletionChunk => ({ id: 'chatcmpl-abc123', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage })

const call = (index: number, args: string, head?: { id: string; name: string }) => ({
  tool_calls: [{ index, ...(head ? { id: head.id, type: 'function', function: { name: head.name, arguments: args } } : { function: { arguments: args } }) }],
})

const USAGE: Usage = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 100 } }

/** Text, then one tool call whose arguments come in pieces, then the usage chunk. */
const TEXT_THEN_TOOL = [
  chunk({ role: 'assistant', content: 'Let me ' }),
  chunk({ content: 'check.' }),
  chunk(call(0, '', { id: 'call_1', name: 'get_weather' })),
  chunk(call(0, '{"location":')),
  chunk(call(0, ' "Paris", "unit": "c"}')),
  chunk({}, 'tool_calls'),
  usageChunk(USAGE),
]

/** Two parallel calls whose pieces arrive interleaved, the second call's first. */
const INTERLEAVED = [
  chunk(call(0, '', { id: 'call_a', name: 'weather' })),
  chunk(call(1, '', { id: 'call_b', name: 'weather' })),
  chunk(call(1, '{"city":')),
  chunk(call(0, '{"city":')),
  chunk(call(1, '"Rome"}')),
  chunk(call(0, '"Paris"}')),
  chunk({}, 'tool_calls'),
]

const OPTS: StreamOptions = { model: 'claude-x' }

async function* source(chunks: ChatCompletionChunk[]): AsyncGenerator<ChatCompletionChunk> {
  for (const c of chunks) yield c
}

async function events(chunks: ChatCompletionChunk[], opts: StreamOptions = OPTS): Promise<MessagesStreamEvent[]> {
  const out: MessagesStreamEvent[] = []
  for await (const event of toMessageEvents(source(chunks), opts)) out.push(event)
  return out
}

/**
 * Checks the grammar of an Anthropic stream (message_start, ping, blocks one at a time with increasing
 * indexes, message_delta, message_stop) and returns the blocks as the deltas build them.
 */
function blocks(stream: MessagesStreamEvent[]): Array<Record<string, unknown>> {
  expect(stream[0]?.type).toBe('message_start')
  expect(stream[1]?.type).toBe('ping')
  expect(stream.at(-2)?.type).toBe('message_delta')
  expect(stream.at(-1)?.type).toBe('message_stop')
  const built: Array<Record<string, unknown>> = []
  let open: number | null = null
  for (const event of stream.slice(2, -2)) {
    if (event.type === 'content_block_start') {
      expect(open).toBeNull()
      expect(event.index).toBe(built.length)
      open = event.index
      built.push({ ...event.content_block, ...(event.content_block.type === 'tool_use' ? { json: '' } : {}) })
    } else if (event.type === 'content_block_delta') {
      expect(event.index).toBe(open)
      const block = built[event.index]!
      const d = event.delta
      if (d.type === 'text_delta') block.text += d.text
      else if (d.type === 'thinking_delta') block.thinking += d.thinking
      else if (d.type === 'signature_delta') block.signature = d.signature
      else block.json += d.partial_json
    } else if (event.type === 'content_block_stop') {
      expect(event.index).toBe(open)
      open = null
    } else {
      throw new Error(`unexpected ${event.type} between the blocks`)
    }
  }
  expect(open).toBeNull()
  return built
}

const messageDelta = (stream: MessagesStreamEvent[]) => stream.at(-2) as Extract<MessagesStreamEvent, { type: 'message_delta' }>

describe('chat chunks -> Messages stream events', () => {
  it('streams text as one text block, with usage from the last chunk in message_delta', async () => {
    const stream = await events([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hello' }), chunk({ content: ' there' }), chunk({}, 'stop'), usageChunk(USAGE)])
    expect(stream).toEqual([
      {
        type: 'message_start',
        message: {
          id: 'msg_abc123',
          type: 'message',
          role: 'assistant',
          model: 'claude-x',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
        },
      },
      { type: 'ping' },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' there' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { input_tokens: 20, output_tokens: 30, cache_creation_input_tokens: 0, cache_read_input_tokens: 100 },
      },
      { type: 'message_stop' },
    ])
  })

  it('puts the input tokens it is given in message_start', async () => {
    const [start] = await events([chunk({ content: 'x' }, 'stop')], { model: 'claude-x', inputTokens: 57 })
    expect(start).toMatchObject({ type: 'message_start', message: { usage: { input_tokens: 57 } } })
  })

  it('streams one tool call after the text, its arguments piece by piece', async () => {
    const stream = await events(TEXT_THEN_TOOL)
    expect(blocks(stream)).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'call_1', name: 'get_weather', input: {}, json: '{"location": "Paris", "unit": "c"}' },
    ])
    const pieces = stream.filter((e) => e.type === 'content_block_delta' && e.index === 1).map((e) => (e as { delta: { partial_json: string } }).delta.partial_json)
    expect(pieces).toEqual(['{"location":', ' "Paris", "unit": "c"}'])
    expect(messageDelta(stream).delta).toEqual({ stop_reason: 'tool_use', stop_sequence: null })
  })

  it('makes interleaved parallel calls separate blocks: the first live, the other whole at the finish', async () => {
    const stream = await events(INTERLEAVED)
    const built = blocks(stream)
    expect(built.map((b) => [b.id, b.name, JSON.parse(b.json as string)])).toEqual([
      ['call_a', 'weather', { city: 'Paris' }],
      ['call_b', 'weather', { city: 'Rome' }],
    ])
    // call_a's pieces went out as they came; call_b's waited
    expect(stream.filter((e) => e.type === 'content_block_delta').length).toBe(3)
  })

  it('switches to the next call as soon as the live one is a complete JSON object', async () => {
    const stream = await events([
      chunk(call(0, '{"city":"Paris"}', { id: 'call_a', name: 'weather' })),
      chunk(call(1, '{"city":', { id: 'call_b', name: 'weather' })),
      chunk(call(1, '"Rome"}')),
      chunk({}, 'tool_calls'),
    ])
    expect(stream.slice(2, 9).map((e) => e.type)).toEqual([
      'content_block_start', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
    ])
    expect(blocks(stream).map((b) => b.json)).toEqual(['{"city":"Paris"}', '{"city":"Rome"}'])
  })

  it('holds text that arrives while a call is incomplete and sends it after the call', async () => {
    const stream = await events([chunk(call(0, '{"a":', { id: 'c', name: 'f' })), chunk({ content: 'Done.' }), chunk(call(0, '1}')), chunk({}, 'stop')])
    expect(blocks(stream)).toEqual([
      { type: 'tool_use', id: 'c', name: 'f', input: {}, json: '{"a":1}' },
      { type: 'text', text: 'Done.' },
    ])
    // a 'stop' finish with tool calls is still a tool_use stop
    expect(messageDelta(stream).delta.stop_reason).toBe('tool_use')
  })

  it('streams reasoning as a thinking block that its thinking_blocks signature closes', async () => {
    const stream = await events([
      chunk({ reasoning: 'Think' }),
      chunk({ reasoning_content: 'ing...' }),
      chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'sig-xyz' }] }),
      chunk({ thinking_blocks: [{ type: 'redacted_thinking', data: 'opaque' }] }),
      chunk({ content: 'Answer.' }),
      chunk({}, 'stop'),
    ])
    expect(blocks(stream)).toEqual([
      { type: 'thinking', thinking: 'Thinking...', signature: 'sig-xyz' },
      { type: 'redacted_thinking', data: 'opaque' },
      { type: 'text', text: 'Answer.' },
    ])
  })

  it('sends the text of a thinking block that arrives whole', async () => {
    const stream = await events([chunk({ thinking_blocks: [{ type: 'thinking', thinking: 'All at once.', signature: 's' }] }), chunk({ content: 'Hi' }, 'stop')])
    expect(blocks(stream)).toEqual([
      { type: 'thinking', thinking: 'All at once.', signature: 's' },
      { type: 'text', text: 'Hi' },
    ])
  })

  it('reports length as max_tokens, and a stop the upstream names as stop_sequence', async () => {
    const cut = await events([chunk({ content: 'Once upon' }, 'length'), usageChunk(USAGE)])
    expect(messageDelta(cut).delta).toEqual({ stop_reason: 'max_tokens', stop_sequence: null })
    const stopped = await events([chunk({ content: 'One, two' }), chunk({}, 'stop', { stop_reason: 'three' })], { model: 'claude-x', stopSequences: ['three'] })
    expect(messageDelta(stopped).delta).toEqual({ stop_reason: 'stop_sequence', stop_sequence: 'three' })
    const other = await events([chunk({ content: 'x' }, 'stop', { stop_reason: 'unrelated' })], { model: 'claude-x', stopSequences: ['three'] })
    expect(messageDelta(other).delta.stop_reason).toBe('end_turn')
  })

  it('ends well-formed when the stream stops without finish_reason or usage', async () => {
    const stream = await events([chunk({ content: 'Partial' }), chunk(call(0, '{"a"', { id: 'c', name: 'f' }))])
    expect(blocks(stream)).toEqual([
      { type: 'text', text: 'Partial' },
      { type: 'tool_use', id: 'c', name: 'f', input: {}, json: '{"a"' },
    ])
    expect(messageDelta(stream)).toEqual({ type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 0 } })
    const empty = await events([])
    expect(empty.map((e) => e.type)).toEqual(['message_start', 'ping', 'message_delta', 'message_stop'])
  })

  it('produces nothing before the first chunk arrives (message_start takes its id from it)', async () => {
    const iterator = toMessageEvents(source([chunk({ content: 'x' }, 'stop')]), OPTS)[Symbol.asyncIterator]()
    const first = await iterator.next()
    expect(first.value).toMatchObject({ type: 'message_start', message: { id: 'msg_abc123' } })
    await iterator.return?.(undefined)
  })

  it('lets an upstream error through after the events before it', async () => {
    const seen: string[] = []
    const failing = (async function* () {
      yield chunk({ content: 'Hel' })
      throw new Error('upstream broke')
    })()
    await expect(
      (async () => {
        for await (const event of toMessageEvents(failing, OPTS)) seen.push(event.type)
      })(),
    ).rejects.toThrow('upstream broke')
    expect(seen).toEqual(['message_start', 'ping', 'content_block_start', 'content_block_delta'])
  })
})

describe('Messages stream events through the official Anthropic SDK', () => {
  let harness: SdkHarness | null = null
  afterEach(async () => {
    await harness?.close()
    harness = null
  })

  async function finalMessage(chunks: ChatCompletionChunk[], stopSequences?: string[]) {
    harness = await startSdkHarness((body) => ({ kind: 'events', events: toMessageEvents(source(chunks), { model: body.model as string, stopSequences }) }))
    const stream = harness.client.messages.stream({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }], stop_sequences: stopSequences })
    const texts: string[] = []
    stream.on('text', (piece) => texts.push(piece))
    const message = await stream.finalMessage()
    return { message, texts }
  }

  it('accumulates text, a tool call and usage', async () => {
    const { message, texts } = await finalMessage(TEXT_THEN_TOOL)
    expect(harness!.requests[0]).toMatchObject({ model: 'claude-x', stream: true })
    expect(texts).toEqual(['Let me ', 'check.'])
    expect(message).toMatchObject({
      id: 'msg_abc123',
      model: 'claude-x',
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { location: 'Paris', unit: 'c' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 20, output_tokens: 30, cache_read_input_tokens: 100, cache_creation_input_tokens: 0 },
    })
  })

  it('accumulates interleaved parallel calls into separate tool_use blocks', async () => {
    const { message } = await finalMessage([...INTERLEAVED, usageChunk(USAGE)])
    expect(message.content).toEqual([
      { type: 'tool_use', id: 'call_a', name: 'weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_b', name: 'weather', input: { city: 'Rome' } },
    ])
  })

  it('accumulates reasoning with its signature, then the text', async () => {
    const { message } = await finalMessage([
      chunk({ reasoning: 'Paris is ' }),
      chunk({ reasoning: 'in France.' }),
      chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 'EqQBCkYIARgCKkA' }] }),
      chunk({ content: 'Paris.' }),
      chunk({}, 'stop'),
      usageChunk({ ...USAGE, completion_tokens_details: { reasoning_tokens: 12 } }),
    ])
    expect(message.content).toEqual([
      { type: 'thinking', thinking: 'Paris is in France.', signature: 'EqQBCkYIARgCKkA' },
      { type: 'text', text: 'Paris.' },
    ])
    expect(message.stop_reason).toBe('end_turn')
    expect(message.usage.output_tokens_details).toEqual({ thinking_tokens: 12 })
  })

  it('reports max_tokens and stop_sequence stops', async () => {
    expect((await finalMessage([chunk({ content: 'Once' }, 'length'), usageChunk(USAGE)])).message).toMatchObject({ stop_reason: 'max_tokens', stop_sequence: null })
    const { message } = await finalMessage([chunk({ content: '1, 2' }, 'stop', { matched_stop: ', 3' })], [', 3'])
    expect(message).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: ', 3', usage: { input_tokens: 0, output_tokens: 0 } })
  })

  it('ends a stream without finish_reason or usage as a complete message', async () => {
    const { message } = await finalMessage([chunk({ content: 'cut' })])
    expect(message).toMatchObject({ content: [{ type: 'text', text: 'cut' }], stop_reason: 'end_turn', usage: { input_tokens: 0, output_tokens: 0 } })
  })
})
