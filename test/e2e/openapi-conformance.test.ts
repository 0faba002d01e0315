/**
 * Real proxy responses (mock provider) validated against the component schemas of OpenAI's own
 * OpenAPI spec, from the shared test data. Skips with a warning when that folder is absent (fails in CI).
 */
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import ajvFormats from 'ajv-formats'
import { parse as parseYaml } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, keyFrom, startTestProxy, tempDataDir } from '../helpers/proxy.js'
import { skipWithoutTestdata, testdataDir } from '../helpers/testdata.js'

/** Response bodies in tests are checked field by field; `unknown` would need a cast at every use. */
const readJson = (res: Response): Promise<any> => res.json()

const specFile = testdataDir === null ? null : path.join(testdataDir, 'openai', 'openapi.yaml')
const skipSpec = skipWithoutTestdata('the OpenAPI spec conformance tests')

const SPEC_ID = 'https://proxy.test/openai-openapi.json'

// ajv-formats is CommonJS: under NodeNext its typed default export is the module object, whose `default` is the plugin.
const addFormats = ((ajvFormats as unknown as { default?: typeof ajvFormats.default }).default ?? ajvFormats) as unknown as typeof ajvFormats.default

/**
 * Loader workarounds, kept to what the spec needs:
 * - `x-*` vendor keys (x-oaiMeta, x-stainless-const…) are dropped: they are documentation, and some hold
 *   values Ajv would otherwise have to ignore one by one.
 * - `format: unixtime` is OpenAI's own format name; it is registered as "any integer" (the `type` still applies).
 * - The spec mixes OpenAPI 3.0 `nullable: true` into a 3.1 document, also next to `$ref`, which Ajv refuses
 *   to compile ("nullable cannot be used without type"); it is rewritten as `anyOf: [schema, {type: null}]`.
 * Only the schemas the tests use are compiled (lazily, through getSchema), not the whole 3 MB document.
 */
function normalizeSpec(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeSpec)
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (!k.startsWith('x-') && k !== 'nullable') out[k] = normalizeSpec(v)
    // OpenAPI 3.0 `nullable: true` means "or null"; say it the 3.1 way, which also works next to `$ref`.
    return (value as { nullable?: unknown }).nullable === true ? { anyOf: [out, { type: 'null' }] } : out
  }
  return value
}

function buildValidator(file: string) {
  const spec = normalizeSpec(parseYaml(readFileSync(file, 'utf8'), { maxAliasCount: -1 })) as { components: { schemas: Record<string, unknown> } }
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false, validateFormats: true })
  addFormats(ajv)
  ajv.addFormat('unixtime', true)
  ajv.addSchema({ ...spec, $id: SPEC_ID })

  // OpenAI streams legacy completions in the CreateCompletionResponse shape, but every chunk before the last
  // has `finish_reason: null`, which the spec's (non-nullable) enum does not admit. Validate streamed chunks
  // against a copy that allows null there and is otherwise the spec's own schema.
  const completion = structuredClone(spec.components.schemas.CreateCompletionResponse) as {
    properties: { choices: { items: { properties: { finish_reason: Record<string, unknown> } } } }
  }
  const finish = completion.properties.choices.items.properties.finish_reason
  completion.properties.choices.items.properties.finish_reason = { anyOf: [finish, { type: 'null' }] }
  ajv.addSchema({ ...rebase(completion), $id: 'https://proxy.test/completion-chunk.json' })

  const cache = new Map<string, ValidateFunction>()
  return (schema: string, value: unknown): ErrorObject[] => {
    let validate = cache.get(schema)
    if (!validate) {
      const ref = schema === 'CompletionChunk' ? 'https://proxy.test/completion-chunk.json' : `${SPEC_ID}#/components/schemas/${schema}`
      validate = ajv.getSchema(ref)
      if (!validate) throw new Error(`schema ${schema} not found in the spec`)
      cache.set(schema, validate)
    }
    return validate(value) ? [] : (validate.errors ?? [])
  }
}

/** Points the local refs of a schema copied out of the spec back at the spec document. */
function rebase(value: unknown): any {
  if (Array.isArray(value)) return value.map(rebase)
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? SPEC_ID + v : rebase(v)
    return out
  }
  return value
}

describe.skipIf(skipSpec)("proxy responses against OpenAI's OpenAPI spec", () => {
  const data = tempDataDir()
  let proxy: RunningProxy
  let key: string
  let check: (schema: string, value: unknown) => ErrorObject[]

  const conforms = (schema: string, value: unknown) => {
    const errors = check(schema, value)
    expect(errors.map((e) => `${e.instancePath || '(root)'} ${e.message} ${JSON.stringify(e.params)}`), `${schema}: ${JSON.stringify(value)}`).toEqual([])
  }
  const post = (p: string, body: unknown, authKey = key) =>
    fetch(`${proxy.url}${p}`, { method: 'POST', headers: { authorization: `Bearer ${authKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })

  /** The JSON objects of an SSE body, in order, without the final [DONE]. */
  async function sseObjects(res: Response): Promise<unknown[]> {
    const text = await res.text()
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    return text
      .split('\n\n')
      .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
      .map((e) => JSON.parse(e.slice(6)))
  }

  beforeAll(async () => {
    check = buildValidator(specFile!)
    expect((await cli(data.dir, ['providers', 'add', 'mock', '--type', 'mock', '--setting', 'chunks=4'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'mock/mock-small'])).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'text-embedding-3-small', '--target', 'mock/mock-embed'])).code).toBe(0)
    key = keyFrom((await cli(data.dir, ['clients', 'add', 'app'])).stdout)
    proxy = await startTestProxy(data.dir)
  }, 60_000)
  afterAll(async () => {
    await proxy?.close()
    data.cleanup()
  })

  it('the validator rejects what the spec forbids (so passing means something)', () => {
    expect(check('CreateChatCompletionResponse', { id: 'x', object: 'chat.completion', created: 1, model: 'm' })).not.toEqual([])
    expect(check('ErrorResponse', { error: { message: 'x', type: 'y' } })).not.toEqual([])
    expect(check('Model', { id: 'm', object: 'model', created: 'yesterday', owned_by: 'me' })).not.toEqual([])
  })

  it('CreateChatCompletionResponse', async () => {
    const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] })
    expect(res.status).toBe(200)
    conforms('CreateChatCompletionResponse', await readJson(res))
  })

  it('CreateChatCompletionStreamResponse, for every chunk, with and without usage', async () => {
    for (const stream_options of [undefined, { include_usage: true }]) {
      const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', stream: true, stream_options, messages: [{ role: 'user', content: 'stream please' }] })
      expect(res.status).toBe(200)
      const chunks = await sseObjects(res)
      expect(chunks.length).toBeGreaterThanOrEqual(4)
      for (const chunk of chunks) conforms('CreateChatCompletionStreamResponse', chunk)
    }
  })

  it('CreateCompletionResponse, streamed and not', async () => {
    const res = await post('/v1/completions', { model: 'gpt-4o-mini', prompt: 'Say this is a test' })
    expect(res.status).toBe(200)
    conforms('CreateCompletionResponse', await readJson(res))
    const stream = await post('/v1/completions', { model: 'gpt-4o-mini', prompt: 'abc', stream: true, stream_options: { include_usage: true } })
    const chunks = await sseObjects(stream)
    expect(chunks.length).toBeGreaterThanOrEqual(3)
    for (const chunk of chunks) conforms('CompletionChunk', chunk)
  })

  it('CreateEmbeddingResponse, as floats and as base64', async () => {
    const floats = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'float' })
    expect(floats.status).toBe(200)
    const floatBody = await readJson(floats)
    conforms('CreateEmbeddingResponse', floatBody)
    // The spec types `embedding` as number[] only, but OpenAI (and the SDKs) send base64 little-endian
    // float32 as a string for encoding_format=base64. Check that, then the rest against the spec.
    const b64 = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'base64' })
    expect(b64.status).toBe(200)
    const body = (await readJson(b64)) as { data: Array<{ embedding: unknown }> }
    for (const [i, item] of body.data.entries()) {
      expect(typeof item.embedding).toBe('string')
      const bytes = Buffer.from(item.embedding as string, 'base64')
      const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4))
      expect(decoded).toHaveLength(floatBody.data[i].embedding.length)
      decoded.forEach((v, j) => expect(v).toBeCloseTo(floatBody.data[i].embedding[j], 5))
      item.embedding = decoded
    }
    conforms('CreateEmbeddingResponse', body)
  })

  it('ListModelsResponse and Model', async () => {
    const list = await fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })
    const body = await readJson(list)
    conforms('ListModelsResponse', body)
    expect(body.data.length).toBe(2)
    const one = await fetch(`${proxy.url}/v1/models/gpt-4o-mini`, { headers: { authorization: `Bearer ${key}` } })
    expect(one.status).toBe(200)
    conforms('Model', await readJson(one))
  })

  it('ErrorResponse, for every kind of error the proxy produces', async () => {
    const bodies: unknown[] = []
    const collect = async (res: Response, status: number) => {
      expect(res.status).toBe(status)
      bodies.push(await readJson(res))
    }
    await collect(await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [] }), 400)
    await collect(await fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{nope' }), 400)
    await collect(await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }, 'sk-proxy-wrong'), 401)
    await collect(await post('/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }), 404)
    await collect(await fetch(`${proxy.url}/v1/models/nope`, { headers: { authorization: `Bearer ${key}` } }), 404)
    await collect(await fetch(`${proxy.url}/v1/unknown`), 404)
    await collect(await fetch(`${proxy.url}/v1/embeddings`), 405)
    for (const body of bodies) conforms('ErrorResponse', body)
  })
})
