/**
 * The translated Response and every stream event checked against the schemas of OpenAI's own OpenAPI
 * spec (shared test data). Skips with a warning when that folder is absent.
 */
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import ajvFormats from 'ajv-formats'
import { parse as parseYaml } from 'yaml'
import { beforeAll, describe, expect, it } from 'vitest'
import { ProxyError } from '../../../../src/core/errors.js'
import { parseResponsesRequest } from '../../../../src/core/responses-schema.js'
import { responseFailedEvent } from '../../../../src/server/responses/errors.js'
import { toResponse } from '../../../../src/server/responses/response.js'
import { newResponseStream, toResponseEvents } from '../../../../src/server/responses/stream.js'
import { testdataDir, testdataLocation } from '../../../helpers/testdata.js'
import { chunk, collect, finishChunk, from, USAGE, usageChunk } from './fixtures.js'

if (testdataDir === null) console.warn(`[responses openapi.test] SKIPPING: shared test data not found at ${testdataLocation}.`)

// ajv-formats is CommonJS: under NodeNext its typed default export is the module object.
const addFormats = ((ajvFormats as unknown as { default?: typeof ajvFormats.default }).default ?? ajvFormats) as unknown as typeof ajvFormats.default

/** Vendor keys dropped; OpenAPI 3.0 `nullable` said the 3.1 way (as test/e2e/openapi-conformance.test.ts does). */
function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize)
  if (!value || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) if (!k.startsWith('x-') && k !== 'nullable') out[k] = normalize(v)
  return (value as { nullable?: unknown }).nullable === true ? { anyOf: [out, { type: 'null' }] } : out
}

/** The spec's schema name of each event type this translator sends. */
const EVENT_SCHEMAS: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.completed': 'ResponseCompletedEvent',
  'response.incomplete': 'ResponseIncompleteEvent',
  'response.failed': 'ResponseFailedEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.refusal.delta': 'ResponseRefusalDeltaEvent',
  'response.refusal.done': 'ResponseRefusalDoneEvent',
  'response.function_call_arguments.delta': 'ResponseFunctionCallArgumentsDeltaEvent',
  'response.function_call_arguments.done': 'ResponseFunctionCallArgumentsDoneEvent',
  'response.reasoning_summary_part.added': 'ResponseReasoningSummaryPartAddedEvent',
  'response.reasoning_summary_part.done': 'ResponseReasoningSummaryPartDoneEvent',
  'response.reasoning_summary_text.delta': 'ResponseReasoningSummaryTextDeltaEvent',
  'response.reasoning_summary_text.done': 'ResponseReasoningSummaryTextDoneEvent',
  'response.custom_tool_call_input.delta': 'ResponseCustomToolCallInputDeltaEvent',
  'response.custom_tool_call_input.done': 'ResponseCustomToolCallInputDoneEvent',
}

describe.skipIf(testdataDir === null)('translated Responses against OpenAI\'s OpenAPI spec', () => {
  let errorsOf: (schema: string, value: unknown) => unknown[]

  beforeAll(() => {
    const spec = normalize(parseYaml(readFileSync(path.join(testdataDir!, 'openai', 'openapi.yaml'), 'utf8'), { maxAliasCount: -1 })) as object
    const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false })
    addFormats(ajv)
    ajv.addFormat('unixtime', true)
    ajv.addSchema({ ...spec, $id: 'https://proxy.test/openai.json' })
    errorsOf = (schema, value) => {
      const validate = ajv.getSchema(`https://proxy.test/openai.json#/components/schemas/${schema}`)!
      return validate(value) ? [] : (validate.errors ?? [])
    }
  })

  const request = parseResponsesRequest({
    model: 'my-claude',
    input: 'Weather?',
    tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object' } }, { type: 'custom', name: 'apply_patch' }],
  })
  const calls = [
    { index: 0, id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{}' } },
    { index: 1, id: 'call_2', type: 'function' as const, function: { name: 'apply_patch', arguments: '{"input":"x"}' } },
  ]

  it('gives a Response that matches the Response schema', () => {
    const res = toResponse(
      {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: 'up',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hi', refusal: 'No.', reasoning: 'r', thinking_blocks: [{ type: 'thinking', thinking: 'r', signature: 's' }], tool_calls: calls }, finish_reason: 'tool_calls', logprobs: null }],
        usage: USAGE,
      },
      request,
    )
    expect(errorsOf('Response', res)).toEqual([])
  })

  it('gives stream events that each match their event schema, the failure event included', async () => {
    const state = newResponseStream(request)
    const events = await collect(
      toResponseEvents(
        from([
          chunk({ reasoning: 'r' }),
          chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: 's' }] }),
          chunk({ content: 'Hi' }),
          chunk({ refusal: 'No.' }),
          chunk({ tool_calls: [calls[0]!] }),
          chunk({ tool_calls: [calls[1]!] }),
          finishChunk('length'),
          usageChunk(USAGE),
        ]),
        state,
      ),
    )
    events.push(responseFailedEvent(new ProxyError({ status: 502, type: 'upstream_error', code: 'x', message: 'm' }), state))
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(Object.keys(EVENT_SCHEMAS).filter((t) => t !== 'response.completed')))
    for (const e of events) expect({ type: e.type, errors: errorsOf(EVENT_SCHEMAS[e.type]!, e) }).toEqual({ type: e.type, errors: [] })
    const { response } = (await collect(toResponseEvents(from([chunk({ content: 'ok' })]), newResponseStream(request)))).at(-1)!
    expect(errorsOf('ResponseCompletedEvent', { type: 'response.completed', sequence_number: 0, response })).toEqual([])
  })
})
