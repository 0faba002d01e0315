import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parseMessagesRequest } from '../../../src/core/messages-schema.js'
import { chatRequestSchema, completionRequestSchema, embeddingRequestSchema, parseRequest } from '../../../src/core/openai-schema.js'
import { keepRequestBytes, requestJson, revised } from '../../../src/core/request-bytes.js'
import { parseResponsesRequest } from '../../../src/core/responses-schema.js'
import { readTestdata, skipWithoutTestdata } from '../../helpers/testdata.js'

/** A request as the server holds it: parsed from `text`, validated by `parse`, tied to the bytes. */
function kept<T extends object>(text: string, parse: (body: unknown) => T = (b) => b as T): { request: T; bytes: Buffer } {
  const bytes = Buffer.from(text)
  const request = parse(JSON.parse(text))
  keepRequestBytes(request, bytes)
  return { request, bytes }
}

const asText = (json: string | Buffer) => (typeof json === 'string' ? json : json.toString('utf8'))

describe('requestJson', () => {
  it('copies the members the proxy left alone byte for byte, and writes the ones it set', () => {
    const text = '{ "model" : "client-model",\n  "messages": [{"role":"user","content":"caf\u00e9 1.0 \\u00e9"}],\t"temperature": 1.0, "n": 1e0 }'
    const { request } = kept(text)
    const out = asText(requestJson(revised(request, { model: 'upstream-model', stream: false })))
    expect(out).toBe('{"model":"upstream-model","messages": [{"role":"user","content":"caf\u00e9 1.0 \\u00e9"}],"temperature": 1.0,"n": 1e0,"stream":false}')
    expect(JSON.parse(out)).toStrictEqual({ ...(request as object), model: 'upstream-model', stream: false })
  })

  it('leaves out members set to undefined, as JSON.stringify does', () => {
    const { request } = kept('{"model":"m","stream_options":{"include_usage":false},"x":1}')
    expect(asText(requestJson(revised(request, { stream_options: undefined })))).toBe('{"model":"m","x":1}')
  })

  it('serialises a member again once it is not the value it was parsed as', () => {
    const { request } = kept<Record<string, any>>('{"model":"m","messages":[{"role":"user","content":"a"}],"top":{"k":1}}')
    // a member changed on the request itself, at the top level
    request.top = { k: 2 }
    const copy = revised(request, { messages: [...request.messages, { role: 'assistant', content: 'b' }] })
    expect(JSON.parse(asText(requestJson(copy)))).toStrictEqual({ model: 'm', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], top: { k: 2 } })
  })

  it('reads keys as JSON.parse does: escaped keys, and the last of a repeated key', () => {
    const { request } = kept('{"mod\\u0065l":"a","x":{"deep":"\\"}{[]"},"x":[1, {"y":"}"}]}')
    expect(request).toStrictEqual({ model: 'a', x: [1, { y: '}' }] })
    const out = asText(requestJson(revised(request, { model: 'b' })))
    expect(out).toBe('{"model":"b","x":[1, {"y":"}"}]}')
  })

  it('handles strings that end in escaped backslashes and values of every kind', () => {
    const text = '{"a":"x\\\\","b":"y\\\\\\"z","c":true,"d":null,"e":-1.5e-3,"f":[],"g":{},"h":"{\\"not\\":[\\"json\\"]}"}'
    const { request } = kept(text)
    expect(asText(requestJson(revised(request, {})))).toBe(text)
  })

  it('falls back to JSON.stringify where the bytes cannot stand for the request', () => {
    // not valid UTF-8: node's decoder replaced a byte, so the bytes and the value differ
    const bytes = Buffer.concat([Buffer.from('{"model":"m","content":"'), Buffer.from([0xff]), Buffer.from('"}')])
    const request = JSON.parse(bytes.toString('utf8')) as object
    keepRequestBytes(request, bytes)
    expect(requestJson(revised(request, {}))).toBe(JSON.stringify(request))
    // no bytes kept
    expect(requestJson({ model: 'm' })).toBe('{"model":"m"}')
    expect(requestJson(revised({ model: 'm' }, { stream: true }))).toBe('{"model":"m","stream":true}')
  })

  describe('the request schemas give back what they were given, so the bytes stand for the validated request', () => {
    const chat = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'look', arguments: '{"q":"x"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'a cat' },
      ],
      tools: [{ type: 'function', function: { name: 'look', description: 'Looks', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, strict: true } }],
      tool_choice: { type: 'function', function: { name: 'look' } },
      response_format: { type: 'json_schema', json_schema: { name: 'o', schema: { type: 'object' }, strict: true } },
      temperature: 0.2,
      max_completion_tokens: 100,
      logit_bias: { '50256': -100 },
      stop: ['\n\n'],
      stream: true,
      stream_options: { include_usage: true },
      user: 'u-1',
      metadata: { run: '7' },
      unknown_vendor_field: { nested: [1, 2, { deep: true }] },
    }
    const cases: Array<[string, object, (b: unknown) => object]> = [
      ['chat completions', chat, (b) => parseRequest(chatRequestSchema, b)],
      ['completions', { model: 'm', prompt: ['a', 'b'], max_tokens: 5, echo: false, suffix: 'x', best_of: 2 }, (b) => parseRequest(completionRequestSchema, b)],
      ['embeddings', { model: 'e', input: [[1, 2, 3], [4]], dimensions: 8, encoding_format: 'float' }, (b) => parseRequest(embeddingRequestSchema, b)],
    ]
    for (const [name, body, parse] of cases) {
      it(name, () => {
        const parsed = parse(JSON.parse(JSON.stringify(body)))
        expect(isDeepStrictEqual(parsed, body)).toBe(true)
      })
    }

    if (!skipWithoutTestdata('the agents\' real requests')) {
      const agents: Array<[string, (b: unknown) => object]> = [
        ['agents/claude-code.json', parseMessagesRequest],
        ['agents/codex.json', parseResponsesRequest],
      ]
      for (const [file, parse] of agents) {
        it(`${file}: validated, each request is what was sent, and goes out as its own bytes but for the model`, () => {
          const requests = JSON.parse(readTestdata(file)) as Array<{ body: unknown }>
          expect(requests.length).toBeGreaterThan(0)
          for (const r of requests) {
            const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body)
            const sent = JSON.parse(text) as Record<string, unknown>
            const { request, bytes } = kept(text, parse)
            expect(isDeepStrictEqual(request, sent)).toBe(true)
            const out = requestJson(revised(request, { model: 'upstream-model' })) as Buffer
            expect(Buffer.isBuffer(out)).toBe(true)
            expect(JSON.parse(out.toString('utf8'))).toStrictEqual({ ...sent, model: 'upstream-model' })
            // everything but the model member is the client's bytes
            const model = Buffer.from(`"model":${JSON.stringify(sent.model)}`)
            expect(bytes.indexOf(model)).toBeGreaterThan(0)
            expect(out.length - Buffer.byteLength('"model":"upstream-model"')).toBe(bytes.length - model.length)
          }
        })
      }
    }
  })
})
