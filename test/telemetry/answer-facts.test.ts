import { describe, expect, it } from 'vitest'
import { noFacts, readAnswer, readEvent } from '../../src/telemetry/tracing/answer-facts.js'

describe('what a trace reads from answers and stream events', () => {
  it('a chat completion: model, id, a finish reason per choice in choice order', () => {
    const facts = noFacts()
    readAnswer(facts, { id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o-2024', choices: [{ index: 1, finish_reason: 'length' }, { index: 0, finish_reason: 'stop' }] })
    expect(facts).toEqual({ model: 'gpt-4o-2024', id: 'chatcmpl-1', finishReasons: ['stop', 'length'] })
  })

  it('an embeddings list has a model and no finish reason', () => {
    const facts = noFacts()
    readAnswer(facts, { object: 'list', model: 'text-embedding-3-small', data: [] })
    expect(facts).toEqual({ model: 'text-embedding-3-small', id: null, finishReasons: [] })
  })

  it('a chat stream: the first chunk names the model, the last one the finish reason', () => {
    const facts = noFacts()
    readEvent(facts, { id: 'c1', object: 'chat.completion.chunk', model: 'up-a', choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }] })
    readEvent(facts, { id: 'c1', object: 'chat.completion.chunk', model: 'up-a', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })
    readEvent(facts, { id: 'c1', object: 'chat.completion.chunk', model: 'up-a', choices: [], usage: { prompt_tokens: 1 } })
    expect(facts).toEqual({ model: 'up-a', id: 'c1', finishReasons: ['tool_calls'] })
  })

  it("Anthropic's Messages: a Message, and the message_start and message_delta events of a stream", () => {
    const whole = noFacts()
    readAnswer(whole, { id: 'msg_1', type: 'message', model: 'claude-sonnet-4', stop_reason: 'end_turn', content: [] })
    expect(whole).toEqual({ model: 'claude-sonnet-4', id: 'msg_1', finishReasons: ['end_turn'] })
    const streamed = noFacts()
    readEvent(streamed, { type: 'message_start', message: { id: 'msg_2', model: 'claude-haiku' } })
    readEvent(streamed, { type: 'content_block_delta', delta: { type: 'text_delta', text: 'x' } })
    readEvent(streamed, { type: 'message_delta', delta: { stop_reason: 'max_tokens' } })
    expect(streamed).toEqual({ model: 'claude-haiku', id: 'msg_2', finishReasons: ['max_tokens'] })
  })

  it("OpenAI's Responses: the status, or why it is incomplete", () => {
    const whole = noFacts()
    readAnswer(whole, { id: 'resp_1', object: 'response', model: 'gpt-5', status: 'completed' })
    expect(whole).toEqual({ model: 'gpt-5', id: 'resp_1', finishReasons: ['completed'] })
    const streamed = noFacts()
    readEvent(streamed, { type: 'response.created', response: { id: 'resp_2', model: 'gpt-5-mini', status: 'in_progress' } })
    expect(streamed.finishReasons).toEqual([])
    readEvent(streamed, { type: 'response.incomplete', response: { id: 'resp_2', model: 'gpt-5-mini', status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } } })
    expect(streamed).toEqual({ model: 'gpt-5-mini', id: 'resp_2', finishReasons: ['max_output_tokens'] })
  })
})
