/**
 * One conformance suite for every provider adapter. Each provider brings a fake upstream that speaks
 * its real wire format and can play the scenarios below; the suite drives the real proxy over loopback
 * with the official `openai` SDK and checks that a client cannot tell which provider answered.
 */
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'
import type { Scenario } from '../fakes/scenario.js'

export type { PlayedCall, PlayedUsage, Scenario } from '../fakes/scenario.js'

export interface RecordedRequest {
  method: string
  path: string
  headers: Record<string, string | string[] | undefined>
  body: any
  /** the body as the bytes arrived (fakes that keep it) */
  raw?: string
}

export interface FakeProvider {
  /** what the operator passes as --base-url */
  baseUrl: string
  /** extra --setting key=value pairs the provider needs (e.g. api_version) */
  settings?: Record<string, string>
  /** the upstream key the test adds; null when the provider takes none */
  apiKey: string | null
  /** reads the upstream key back from a recorded request, as the provider expects to receive it */
  keyOf(req: RecordedRequest): string | undefined
  /** reads the model (or deployment) the upstream was asked for */
  modelOf(req: RecordedRequest): string | undefined
  /** what the next requests get */
  play(scenario: Scenario): void
  requests: RecordedRequest[]
  close(): Promise<void>
}

export interface ConformanceTarget {
  /** provider type as `proxy providers add --type` takes it */
  type: string
  start(): Promise<FakeProvider>
  /** providers that cannot do something say so here; the suite then checks the proxy refuses clearly */
  supports?: { tools?: boolean; completions?: boolean; embeddings?: boolean }
}

const ERROR_CASES = ['400', '429', '500', '401', 'stream'] as const

const TOOL = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } },
}

export function describeProvider(target: ConformanceTarget): void {
  describe(`provider conformance: ${target.type}`, () => {
    const data = tempDataDir()
    let fake: FakeProvider
    let proxy: RunningProxy
    let sdk: OpenAI
    const upstreamModel = `upstream-${target.type}-model`

    beforeAll(async () => {
      fake = await target.start()
      const settings = Object.entries(fake.settings ?? {}).flatMap(([k, v]) => ['--setting', `${k}=${v}`])
      // Each failure case gets its own provider and model: a 429 cools a key down and a 401 marks it
      // invalid, and neither may leak into the next case.
      for (const [provider, model] of [['p', 'm'], ...ERROR_CASES.map((c) => [`p-${c}`, `m-${c}`])]) {
        const added = await cli(data.dir, ['providers', 'add', provider!, '--type', target.type, '--base-url', fake.baseUrl, ...settings])
        expect(added.stderr).toBe('')
        if (fake.apiKey) expect((await cli(data.dir, ['keys', 'add', provider!], { stdin: fake.apiKey })).code).toBe(0)
        expect((await cli(data.dir, ['models', 'add', model!, '--target', `${provider}/${upstreamModel}`])).code).toBe(0)
      }
      const client = await cli(data.dir, ['clients', 'add', 'conformance'])
      proxy = await startTestProxy(data.dir)
      sdk = new OpenAI({ apiKey: keyFrom(client.stdout), baseURL: `${proxy.url}/v1`, maxRetries: 0 })
    })
    afterAll(async () => {
      await proxy?.close()
      await fake?.close()
      data.cleanup()
    })

    it('answers a chat completion with the text, finish_reason and usage the upstream reported', async () => {
      fake.play({ kind: 'text', text: 'Hello there!', usage: { prompt: 11, completion: 3 } })
      const res = await sdk.chat.completions.create({ model: 'm', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] })
      expect(res.object).toBe('chat.completion')
      expect(res.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Hello there!' })
      expect(res.choices[0]!.finish_reason).toBe('stop')
      expect(res.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 })
      const seen = fake.requests.at(-1)!
      expect(fake.modelOf(seen)).toBe(upstreamModel)
      if (fake.apiKey) expect(fake.keyOf(seen)).toBe(fake.apiKey)
    })

    it('streams text that rebuilds exactly, ends with finish_reason and reports usage when asked', async () => {
      fake.play({ kind: 'text', text: 'One, two, three, four.', usage: { prompt: 9, completion: 6 } })
      const stream = await sdk.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Count' }] })
      let text = ''
      let finish: string | null = null
      let role: string | undefined
      const usage: unknown[] = []
      let chunks = 0
      for await (const chunk of stream) {
        chunks++
        expect(chunk.object).toBe('chat.completion.chunk')
        role ??= chunk.choices[0]?.delta.role
        text += chunk.choices[0]?.delta.content ?? ''
        finish = chunk.choices[0]?.finish_reason ?? finish
        if (chunk.usage) usage.push(chunk.usage)
      }
      expect(role).toBe('assistant')
      expect(text).toBe('One, two, three, four.')
      expect(finish).toBe('stop')
      expect(chunks).toBeGreaterThan(2)
      expect(usage).toEqual([expect.objectContaining({ prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 })])
    })

    if (target.supports?.tools !== false) {
      it('returns a tool call with arguments as a JSON string', async () => {
        fake.play({ kind: 'tool_call', id: 'call_1', name: 'get_weather', args: { location: 'Paris', unit: 'c' }, usage: { prompt: 20, completion: 10 } })
        const res = await sdk.chat.completions.create({ model: 'm', tools: [TOOL], tool_choice: 'auto', messages: [{ role: 'user', content: 'Weather in Paris?' }] })
        const call = res.choices[0]!.message.tool_calls![0]! as { id: string; type: string; function: { name: string; arguments: string } }
        expect(res.choices[0]!.finish_reason).toBe('tool_calls')
        expect(call.type).toBe('function')
        expect(call.id).toBeTruthy()
        expect(call.function.name).toBe('get_weather')
        expect(JSON.parse(call.function.arguments)).toEqual({ location: 'Paris', unit: 'c' })
      })

      it('streams a tool call that the SDK stream helper accumulates into the same message', async () => {
        fake.play({ kind: 'tool_call', id: 'call_2', name: 'get_weather', args: { location: 'Paris', days: [1, 2] }, text: 'Let me check.', usage: { prompt: 20, completion: 12 } })
        const runner = sdk.chat.completions.stream({ model: 'm', tools: [TOOL], messages: [{ role: 'user', content: 'Weather in Paris?' }] })
        const final = await runner.finalChatCompletion()
        const choice = final.choices[0]!
        expect(choice.finish_reason).toBe('tool_calls')
        const call = choice.message.tool_calls![0]! as { function: { name: string; arguments: string } }
        expect(call.function.name).toBe('get_weather')
        expect(JSON.parse(call.function.arguments)).toEqual({ location: 'Paris', days: [1, 2] })
        expect(choice.message.tool_calls).toHaveLength(1)
      })

      it('sends a tool result conversation upstream without error', async () => {
        fake.play({ kind: 'text', text: 'It is sunny.', usage: { prompt: 30, completion: 4 } })
        const res = await sdk.chat.completions.create({
          model: 'm',
          tools: [TOOL],
          messages: [
            { role: 'user', content: 'Weather in Paris?' },
            { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
            { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"clear"}' },
          ],
        })
        expect(res.choices[0]!.message.content).toBe('It is sunny.')
      })
    }

    it('maps an upstream 400 to BadRequestError with the upstream message', async () => {
      fake.play({ kind: 'error', status: 400, message: 'messages: bad thing' })
      const call = sdk.chat.completions.create({ model: 'm-400', messages: [{ role: 'user', content: 'x' }] })
      await expect(call).rejects.toBeInstanceOf(OpenAI.BadRequestError)
      await expect(call).rejects.toMatchObject({ message: expect.stringContaining('bad thing') })
    })

    it('maps an upstream 429 to RateLimitError', async () => {
      fake.play({ kind: 'error', status: 429, message: 'slow down' })
      await expect(sdk.chat.completions.create({ model: 'm-429', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.RateLimitError)
    })

    it('maps an upstream 500 to a server error that names the provider', async () => {
      fake.play({ kind: 'error', status: 500, message: 'kaboom' })
      const call = sdk.chat.completions.create({ model: 'm-500', messages: [{ role: 'user', content: 'x' }] })
      await expect(call).rejects.toBeInstanceOf(OpenAI.InternalServerError)
      await expect(call).rejects.toMatchObject({ message: expect.stringContaining("'p-500'") })
    })

    it('maps a rejected upstream key to a 502 that blames the proxy key, not the client', async () => {
      fake.play({ kind: 'error', status: 401, message: 'invalid x-api-key' })
      const call = sdk.chat.completions.create({ model: 'm-401', messages: [{ role: 'user', content: 'x' }] })
      await expect(call).rejects.toMatchObject({ status: 502, code: 'upstream_auth_failed' })
    })

    it('ends a stream with an error the SDK raises when the upstream fails mid-stream', async () => {
      fake.play({ kind: 'stream_error', text: 'partial answer', message: 'Overloaded' })
      const stream = await sdk.chat.completions.create({ model: 'm-stream', stream: true, messages: [{ role: 'user', content: 'x' }] })
      let text = ''
      const consume = async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
      }
      await expect(consume()).rejects.toThrow(/Overloaded/)
      expect('partial answer'.startsWith(text)).toBe(true)
    })

    if (target.supports?.embeddings === false) {
      it('refuses embeddings with a 400 that names the provider and the missing capability', async () => {
        const before = fake.requests.length
        const call = sdk.embeddings.create({ model: 'm', input: 'hello' })
        await expect(call).rejects.toBeInstanceOf(OpenAI.BadRequestError)
        await expect(call).rejects.toMatchObject({ code: 'unsupported_operation', message: expect.stringMatching(/'p'.*embeddings/) })
        expect(fake.requests.length).toBe(before)
      })
    }

    if (target.supports?.completions === false) {
      it('refuses legacy completions with a 400 that names the provider and the missing capability', async () => {
        const call = sdk.completions.create({ model: 'm', prompt: 'hello' })
        await expect(call).rejects.toMatchObject({ status: 400, code: 'unsupported_operation', message: expect.stringMatching(/'p'.*completions/) })
      })
    }
  })
}
