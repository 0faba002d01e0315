/**
 * The gateway's reasoning extensions on assistant messages (core/reasoning.ts) reach OpenAI-format hosts
 * that may read them back, but not OpenAI or Azure, which refuse message fields they do not know.
 */
import { Agent } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatRequest } from '../../../src/core/openai-schema.js'
import { createOpenAIAdapter } from '../../../src/providers/openai.js'
import type { CallContext } from '../../../src/providers/types.js'
import { chatCompletion, startFakeOpenAI, type FakeUpstream } from '../../fakes/openai-upstream.js'

let fake: FakeUpstream
let agent: Agent

beforeAll(async () => {
  fake = await startFakeOpenAI()
  fake.respond(() => ({ kind: 'json', body: chatCompletion('m', 'ok') }))
  agent = new Agent()
})
afterAll(async () => {
  await agent.close()
  await fake.close()
})

const ctx: CallContext = { apiKey: 'sk-up', upstreamModel: 'm', signal: AbortSignal.timeout(5000), requestId: 'req_1', timeouts: { firstByteMs: 5000 } }
const withThinking = {
  model: 'x',
  messages: [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: 'hello', reasoning: 'The user greets me.', thinking_blocks: [{ type: 'thinking', thinking: 'The user greets me.', signature: 'sig' }] },
    { role: 'user', content: 'again' },
  ],
} as unknown as ChatRequest

describe('reasoning extensions on the way to OpenAI-format hosts', () => {
  it('leaves them out for OpenAI, keeping everything else, and does not change the request it was given', async () => {
    const adapter = createOpenAIAdapter({ name: 'oai', type: 'openai', baseUrl: fake.url, settings: {} }, { dispatcher: agent })
    await adapter.chat(withThinking, ctx)
    const sent = fake.requests.at(-1)!.body.messages
    expect(sent).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'again' },
    ])
    expect((withThinking.messages[1] as Record<string, unknown>).thinking_blocks).toBeDefined()
  })

  it('passes them to an OpenAI-compatible host', async () => {
    const adapter = createOpenAIAdapter({ name: 'compat', type: 'openai-compatible', baseUrl: fake.url, settings: {} }, { dispatcher: agent })
    await adapter.chat(withThinking, ctx)
    expect(fake.requests.at(-1)!.body.messages[1]).toMatchObject({ reasoning: 'The user greets me.', thinking_blocks: [{ signature: 'sig' }] })
  })
})
