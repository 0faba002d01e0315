/**
 * A schema for an object whose `type` picks the schema that checks it (a content block, an input item,
 * a tool choice). Written as a check on the value rather than as an object schema: the value goes
 * through as the client sent it, and is walked once, by the schema its type names. An object schema
 * with a refinement walked it twice and made two copies, one of them thrown away, which on an agent's
 * request was most of the validation's cost (docs/performance.md).
 */
import * as z from './zod.js'

/**
 * `value` checked by `schemas[typeOf(value)]`, or by `other` when that names no schema (an unknown
 * type, or a value that is not an object). Issues keep their paths, relative to this value.
 */
export function byType<T>(schemas: Readonly<Record<string, z.ZodType>>, other: z.ZodType, typeOf: (value: Record<string, unknown>) => unknown = (v) => v.type): z.ZodType<T> {
  return z.unknown().check((ctx) => {
    const value = ctx.value
    const type = value !== null && typeof value === 'object' && !Array.isArray(value) ? typeOf(value as Record<string, unknown>) : undefined
    // own keys only: a client's "constructor" or "__proto__" is an unknown type, not Object's member
    const schema = typeof type === 'string' && Object.hasOwn(schemas, type) ? schemas[type]! : other
    const result = schema.safeParse(value)
    if (!result.success) ctx.issues.push(...(result.error.issues as never[]))
  }) as unknown as z.ZodType<T>
}
