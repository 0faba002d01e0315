import { describe, expect, it } from 'vitest'
import { byType } from '../../../src/core/schema-by-type.js'
import * as z from '../../../src/core/zod.js'
import { parseMessagesRequest } from '../../../src/core/messages-schema.js'
import { parseResponsesRequest } from '../../../src/core/responses-schema.js'

const typed = z.looseObject({ type: z.string() })
const block = byType({ text: z.looseObject({ type: z.literal('text'), text: z.string() }) }, typed)
const list = z.array(block)

describe('byType', () => {
  it('gives back the very objects it was given: checked, not copied', () => {
    const value = [{ type: 'text', text: 'hi', extra: { deep: [1] } }, { type: 'other', anything: true }]
    const result = list.parse(value)
    expect(result[0]).toBe(value[0])
    expect(result[1]).toBe(value[1])
  })

  it('checks a known type by its own schema, with the path of the bad field', () => {
    const result = list.safeParse([{ type: 'text', text: 'ok' }, { type: 'text', text: 5 }])
    expect(result.success).toBe(false)
    expect(result.error!.issues).toEqual([expect.objectContaining({ code: 'invalid_type', expected: 'string', path: [1, 'text'] })])
  })

  it('checks an unknown type, or a value that is not an object, by the other schema', () => {
    expect(list.safeParse([{ type: 'video', url: 'x' }]).success).toBe(true)
    expect(list.safeParse([{ kind: 'text' }]).error!.issues).toEqual([expect.objectContaining({ code: 'invalid_type', path: [0, 'type'] })])
    for (const bad of ['text', null, 3, ['text']]) expect(list.safeParse([bad]).error!.issues).toEqual([expect.objectContaining({ code: 'invalid_type', expected: 'object', path: [0] })])
  })

  it("takes a type named after an Object member for an unknown type, not for one of its schemas", () => {
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) expect(list.safeParse([{ type }]).success).toBe(true)
  })

  it('is still a required member: absent is a type error', () => {
    const holder = z.looseObject({ source: block })
    expect(holder.safeParse({}).error!.issues).toEqual([expect.objectContaining({ code: 'invalid_type', expected: 'object', path: ['source'] })])
  })
})

describe('the request schemas built on it', () => {
  it('pass a Messages block and a Responses item whose type is an Object member name', () => {
    expect(() => parseMessagesRequest({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'constructor' }, { type: 'toString' }] }] })).not.toThrow()
    expect(() => parseResponsesRequest({ model: 'm', input: [{ type: 'constructor' }, { type: 'message', role: 'user', content: [{ type: '__proto__' }] }] })).not.toThrow()
  })

  it('still name the bad field of a known type', () => {
    expect(() => parseMessagesRequest({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'text', text: 1 }] }] })).toThrow(/messages\[0\]\.content\[0\]\.text/)
    expect(() => parseResponsesRequest({ model: 'm', input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: {} }] })).toThrow(/input\[0\]\.arguments/)
  })
})
