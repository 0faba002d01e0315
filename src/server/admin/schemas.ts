/**
 * Request bodies of the admin API, validated once at the edge (parseRequest: a 400 naming the field).
 * Field names follow the JSON the listings return (and `proxy … --json` prints): camelCase. Unknown
 * fields are refused, so a typo never silently leaves a setting out.
 */
import * as z from '../../core/zod.js'
import { PROVIDER_TYPES } from '../../store/schema.js'

const name = z.string().min(1).max(63)
const httpUrl = z.string().refine((v) => /^https?:\/\/[^\s]+$/i.test(v) && URL.canParse(v), { message: 'expected an http:// or https:// URL' })
const count = z.number().int().min(1).nullish()

export const addProviderBody = z.strictObject({
  name,
  type: z.enum(PROVIDER_TYPES),
  baseUrl: httpUrl.nullish(),
  settings: z.record(z.string(), z.unknown()).optional(),
  /** with type openai-compatible: a known host's base URL and quirks (see docs/providers.md) */
  preset: z.string().min(1).optional(),
})

/** PATCH /providers/:name: only what changes; settings merge into the current ones */
export const setProviderBody = z.strictObject({
  /** null: back to the type's default */
  baseUrl: httpUrl.nullish(),
  settings: z.record(z.string(), z.unknown()).optional(),
  /** setting names to remove: 'stream_usage', 'headers.X-Org' */
  unsetSettings: z.array(z.string().min(1)).min(1).optional(),
  /** a preset's base URL (unless baseUrl is given) and settings, again */
  preset: z.string().min(1).optional(),
})

export const addKeyBody = z.strictObject({
  provider: name,
  /** the upstream secret: stored encrypted, never returned */
  secret: z.string().min(1),
  label: name.optional(),
  priority: z.number().int().min(0).optional(),
  weight: z.number().int().min(1).optional(),
})

export const rotateKeyBody = z.strictObject({
  secret: z.string().min(1),
  /** which provider, when the label is used by several */
  provider: name.optional(),
})

/** enable, disable and remove take the provider in the body or as ?provider= */
export const keyRefBody = z.strictObject({ provider: name.optional() })

export const addClientBody = z.strictObject({
  name,
  role: z.enum(['admin', 'user']).optional(),
  /** models it may use; absent or null: every routed model */
  models: z.array(z.string().min(1)).min(1).nullish(),
  /** a lifetime such as '30d', '12h', '2w', or an ISO date */
  expires: z.string().min(1).nullish(),
  policy: name.nullish(),
  capture: z.boolean().optional(),
  rpm: count,
  tpm: count,
  dailyTokens: count,
  monthlyTokens: count,
})

const target = z.union([
  z.string().min(3),
  z.strictObject({ provider: name, upstreamModel: z.string().min(1), weight: z.number().int().min(1).optional() }),
])

export const addRouteBody = z.strictObject({
  model: z.string().min(1).max(256),
  /** tried in order: 'provider/upstream-model' or { provider, upstreamModel, weight } */
  targets: z.array(target).min(1),
  policy: name.nullish(),
  /** replace the targets of an existing route instead of refusing */
  replace: z.boolean().optional(),
})

export const circuitBody = z.strictObject({
  provider: name,
  /** a key label (or id) of that provider; absent: the provider's own circuit */
  key: z.string().min(1).optional(),
})

export type AddProviderBody = z.infer<typeof addProviderBody>
export type AddClientBody = z.infer<typeof addClientBody>
export type AddRouteBody = z.infer<typeof addRouteBody>
