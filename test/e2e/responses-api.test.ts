import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { FAKE_ANTHROPIC_KEY, startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-upstream.js'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cliOk, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'

const weatherTool: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
}

describe('POST /v1/responses through the proxy, with the official openai SDK', () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let openai: FakeUpstream
  let anthropic: FakeAnthropic
  let sdk: OpenAI
  let other: OpenAI

  beforeAll(async () => {
    openai = await startFakeOpenAI()
    anthropic = await startFakeAnthropic()
    await cliOk(data.dir, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'tool_calls=true', '--setting', 'chunks=4'])
    await cliOk(data.dir, ['providers', 'add', 'oai', '--type', 'openai', '--base-url', openai.url])
    await cliOk(data.dir, ['keys', 'add', 'oai', '--label', 'first', '--priority', '5'], 'sk-openai-first')
    await cliOk(data.dir, ['providers', 'add', 'claude', '--type', 'anthropic', '--base-url', anthropic.url])
    await cliOk(data.dir, ['keys', 'add', 'claude', '--label', 'main'], FAKE_ANTHROPIC_KEY)
    await cliOk(data.dir, ['models', 'add', 'mock-model', '--target', 'mock/mock-1'])
    await cliOk(data.dir, ['models', 'add', 'gpt-5', '--target', 'oai/gpt-5-upstream'])
    await cliOk(data.dir, ['models', 'add', 'claude-model', '--target', 'claude/claude-sonnet-4-5'])
    const key = keyFrom((await cliOk(data.dir, ['clients', 'add', 'codex'])).stdout)
    const otherKey = keyFrom((await cliOk(data.dir, ['clients', 'add', 'other'])).stdout)
    proxy = await startTestProxy(data.dir)
    sdk = new OpenAI({ apiKey: key, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    other = new OpenAI({ apiKey: otherKey, baseURL: `${proxy.url}/v1`, maxRetries: 0 })
  })
  afterAll(async () => {
    await proxy?.close()
    await openai?.close()
    await anthropic?.close()
    data.cleanup()
  })

  describe('a translated provider (the mock)', () => {
    it('answers responses.create with a Response', async () => {
      const r = await sdk.responses.create({ model: 'mock-model', input: 'Hello there' })
      expect(r.object).toBe('response')
      expect(r.status).toBe('completed')
      expect(r.model).toBe('mock-model')
      expect(r.output_text).toBe('Mock reply from mock-1: you said "Hello there".')
      expect(r.usage!.output_tokens).toBeGreaterThan(0)
      expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + r.usage!.output_tokens)
    })

    it('streams with responses.stream() into the same final response', async () => {
      const stream = sdk.responses.stream({ model: 'mock-model', input: 'stream me', instructions: 'Be brief.' })
      let text = ''
      const types: string[] = []
      stream.on('response.output_text.delta', (e) => (text += e.delta))
      for await (const event of stream) types.push(event.type)
      const final = await stream.finalResponse()
      expect(text).toBe('Mock reply from mock-1: you said "stream me".')
      expect(final.output_text).toBe(text)
      expect(types[0]).toBe('response.created')
      expect(types.at(-1)).toBe('response.completed')
      expect(final.usage!.output_tokens).toBeGreaterThan(0)
    })

    it('does a function-tool round trip with function_call_output', async () => {
      const first = await sdk.responses.create({ model: 'mock-model', input: 'Weather in Paris?', tools: [weatherTool] })
      const call = first.output.find((item) => item.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall
      expect(call).toMatchObject({ type: 'function_call', name: 'get_weather' })
      expect(JSON.parse(call.arguments)).toHaveProperty('city')

      const streamed = await sdk.responses.stream({ model: 'mock-model', input: 'Weather in Paris?', tools: [weatherTool] }).finalResponse()
      const streamedCall = streamed.output.find((item) => item.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall
      expect(streamedCall.arguments).toBe(call.arguments)

      const second = await sdk.responses.create({
        model: 'mock-model',
        tools: [weatherTool],
        input: [
          { role: 'user', content: 'Weather in Paris?' },
          { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
          { type: 'function_call_output', call_id: call.call_id, output: 'Sunny, 21 C' },
        ],
      })
      expect(second.output_text.length).toBeGreaterThan(0)
      expect(second.output.some((item) => item.type === 'function_call')).toBe(false)
    })

    it('continues with previous_response_id, retrieves, lists input items and deletes, for its owner only', async () => {
      const first = await sdk.responses.create({ model: 'mock-model', input: 'My name is Ada.' })
      const second = await sdk.responses.create({ model: 'mock-model', input: 'What is my name?', previous_response_id: first.id })
      expect(second.previous_response_id).toBe(first.id)
      // the mock echoes the last user message; what matters is that the earlier turn went upstream too
      expect(second.output_text).toContain('What is my name?')

      const got = await sdk.responses.retrieve(second.id)
      expect(got.id).toBe(second.id)
      expect(got.output_text).toBe(second.output_text)
      const items = await sdk.responses.inputItems.list(second.id)
      expect(items.data.length).toBe(1)
      // a string input is listed as the message item it stands for, typed as OpenAI lists it
      expect(items.data[0]).toMatchObject({ type: 'message', role: 'user', content: 'What is my name?' })

      await expect(other.responses.retrieve(second.id)).rejects.toMatchObject({ status: 404 })
      await expect(other.responses.create({ model: 'mock-model', input: 'x', previous_response_id: first.id })).rejects.toMatchObject({ status: 404 })
      await expect(other.responses.delete(second.id)).rejects.toMatchObject({ status: 404 })

      await sdk.responses.delete(second.id)
      await expect(sdk.responses.retrieve(second.id)).rejects.toMatchObject({ status: 404 })
    })

    it('keeps nothing with store: false', async () => {
      const r = await sdk.responses.create({ model: 'mock-model', input: 'forget me', store: false })
      await expect(sdk.responses.retrieve(r.id)).rejects.toMatchObject({ status: 404 })
    })

    it('refuses a forced hosted tool with a 400 naming it', async () => {
      await expect(sdk.responses.create({ model: 'mock-model', input: 'search', tools: [{ type: 'web_search' }], tool_choice: 'required' })).rejects.toMatchObject({ status: 400 })
    })
  })

  describe('an OpenAI provider (native)', () => {
    it('forwards the body untouched but for the model, and relays the stream', async () => {
      openai.responses.setPlan({ kind: 'text', pieces: ['Native', ' answer'] })
      const before = openai.requests.length
      const r = await sdk.responses.create({ model: 'gpt-5', input: 'hi', include: ['reasoning.encrypted_content'], store: true, metadata: { run: '1' }, prompt_cache_key: 'k1' } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
      expect(r.output_text).toBe('Native answer')
      const seen = openai.requests.slice(before).find((q) => q.path.endsWith('/responses'))!
      expect(seen.body).toEqual({ model: 'gpt-5-upstream', input: 'hi', include: ['reasoning.encrypted_content'], store: true, metadata: { run: '1' }, prompt_cache_key: 'k1' })
      expect(seen.headers.authorization).toBe('Bearer sk-openai-first')

      const final = await sdk.responses.stream({ model: 'gpt-5', input: 'stream' }).finalResponse()
      expect(final.output_text).toBe('Native answer')
    })

    it('continues, retrieves and deletes on the provider and key that made it', async () => {
      const first = await sdk.responses.create({ model: 'gpt-5', input: 'one' })
      // a second key now comes first: the continuation must still go to the key that made the response
      await cliOk(data.dir, ['keys', 'add', 'oai', '--label', 'second', '--priority', '0'], 'sk-openai-second')
      await new Promise((r) => setTimeout(r, 300))
      const before = openai.requests.length
      await sdk.responses.create({ model: 'gpt-5', input: 'two', previous_response_id: first.id })
      const cont = openai.requests.slice(before).find((q) => q.path.endsWith('/responses'))!
      expect(cont.body.previous_response_id).toBe(first.id)
      expect(cont.headers.authorization).toBe('Bearer sk-openai-first')

      const got = await sdk.responses.retrieve(first.id)
      expect(got.id).toBe(first.id)
      const items = await sdk.responses.inputItems.list(first.id)
      expect(Array.isArray(items.data)).toBe(true)
      await expect(other.responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 })
      await sdk.responses.delete(first.id)
      await expect(sdk.responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 })
    })

    it('sends the items a reference names in place of the reference when this proxy made them', async () => {
      const first = await sdk.responses.create({ model: 'mock-model', input: 'My name is Ada.' })
      const msg = first.output.find((i) => i.type === 'message')!
      const before = openai.requests.length
      await sdk.responses.create({ model: 'gpt-5', input: [{ role: 'user', content: 'My name is Ada.' }, { type: 'item_reference', id: msg.id }, { role: 'user', content: 'And mine?' }] })
      const seen = openai.requests.slice(before).find((q) => q.path.endsWith('/responses'))!
      expect(seen.body.input[1]).toEqual(msg)
      // one OpenAI made itself goes to OpenAI as it is
      await sdk.responses.create({ model: 'gpt-5', input: [{ type: 'item_reference', id: 'msg_67c9fdcecf488190bdd9a0409de3a1ec' }] })
      expect(openai.requests.at(-1)!.body.input).toEqual([{ type: 'item_reference', id: 'msg_67c9fdcecf488190bdd9a0409de3a1ec' }])
    })
  })

  describe('an Anthropic provider (translated)', () => {
    it('answers a Response from a Messages upstream, with reasoning kept for the next turn', async () => {
      anthropic.play({ kind: 'text', text: 'Bonjour', usage: { prompt: 9, completion: 2 }, thinking: [{ thinking: 'The user greets me.', signature: 'sig-abc' }] })
      const r = await sdk.responses.create({ model: 'claude-model', input: 'Hi', reasoning: { effort: 'low' }, max_output_tokens: 4000 })
      expect(r.output_text).toBe('Bonjour')
      const reasoning = r.output.find((item) => item.type === 'reasoning') as OpenAI.Responses.ResponseReasoningItem
      expect(reasoning.encrypted_content).toBeTruthy()
      const before = anthropic.requests.length
      anthropic.play({ kind: 'text', text: 'Again', usage: { prompt: 9, completion: 2 } })
      await sdk.responses.create({ model: 'claude-model', input: 'And again', previous_response_id: r.id, reasoning: { effort: 'low' }, max_output_tokens: 4000 })
      const seen = anthropic.requests.slice(before).find((q) => q.path.startsWith('/v1/messages'))!
      const assistant = (seen.body.messages as Array<{ role: string; content: Array<{ type: string; signature?: string }> }>).find((m) => m.role === 'assistant')!
      expect(assistant.content[0]).toMatchObject({ type: 'thinking', signature: 'sig-abc' })
    })

    // The Vercel AI SDK's default provider sends earlier output as item_reference, with no previous_response_id.
    it('resolves item_reference to the items of an earlier response without previous_response_id, for its owner only', async () => {
      const effort = { reasoning: { effort: 'low' as const }, max_output_tokens: 4000 }
      anthropic.play({ kind: 'text', text: 'Bonjour', usage: { prompt: 9, completion: 2 }, thinking: [{ thinking: 'A greeting.', signature: 'sig-ref' }] })
      const first = await sdk.responses.stream({ model: 'claude-model', input: 'Hi', ...effort }).finalResponse()
      const [rs, msg] = [first.output.find((i) => i.type === 'reasoning')!, first.output.find((i) => i.type === 'message')!]

      anthropic.play({ kind: 'text', text: 'Again', usage: { prompt: 9, completion: 2 } })
      const before = anthropic.requests.length
      const second = await sdk.responses.create({
        model: 'claude-model',
        input: [{ role: 'user', content: 'Hi' }, { type: 'item_reference', id: rs.id! }, { type: 'item_reference', id: msg.id }, { role: 'user', content: 'And again' }],
        ...effort,
      })
      expect(second.output_text).toBe('Again')
      const seen = anthropic.requests.slice(before).find((q) => q.path.startsWith('/v1/messages'))!
      expect(seen.body.messages).toEqual([
        { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'A greeting.', signature: 'sig-ref' }, { type: 'text', text: 'Bonjour' }] },
        { role: 'user', content: [{ type: 'text', text: 'And again' }] },
      ])

      // stored with the references resolved, so the response can be continued on its own
      const listed = await sdk.responses.inputItems.list(second.id, { order: 'asc' })
      expect(listed.data.map((i) => [i.type, i.id])).toEqual([['message', expect.any(String)], ['reasoning', rs.id], ['message', msg.id], ['message', expect.any(String)]])
      expect(listed.data[2]).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Bonjour' }] })

      // the items of a JSON answer are found as well
      const again = second.output.find((i) => i.type === 'message')!
      const third = await sdk.responses.create({ model: 'claude-model', input: [{ role: 'user', content: 'Hi' }, { type: 'item_reference', id: again.id }, { role: 'user', content: 'Once more' }] })
      expect(third.status).toBe('completed')
      const last = anthropic.requests.at(-1)!
      expect(last.body.messages[1]).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'Again' }] })

      await expect(other.responses.create({ model: 'claude-model', input: [{ type: 'item_reference', id: msg.id }, { role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'item_not_found' })
    })
  })
})
