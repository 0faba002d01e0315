/**
 * The policy document: how the gateway retries, times out, breaks circuits, picks keys and falls back,
 * and which limits apply. Stored as the operator wrote it; `withPolicyDefaults` fills the rest, so
 * `proxy policy show` can print the effective values. Unknown fields are errors: a typo in a policy
 * must not silently leave a safety setting at its default.
 */
import { z } from 'zod'
import { invalidRequest } from './errors.js'

const ms = z.number().int().min(0)
const rate = z.strictObject({ rpm: z.number().int().min(1).optional(), tpm: z.number().int().min(1).optional() })

export const policySchema = z.strictObject({
  keys: z.strictObject({ strategy: z.enum(['round-robin', 'priority', 'least-used', 'weighted']).optional() }).optional(),
  retry: z
    .strictObject({
      max_attempts: z.number().int().min(1).max(20).optional(),
      backoff_ms: z.strictObject({ base: ms.optional(), max: ms.optional() }).optional(),
      retry_after_cap_ms: ms.optional(),
    })
    .optional(),
  timeouts_ms: z
    .strictObject({
      connect: ms.min(1).optional(),
      first_byte: ms.min(1).optional(),
      total: ms.min(1).optional(),
      budget: ms.min(1).optional(),
    })
    .optional(),
  circuit: z
    .strictObject({
      consecutive_failures: z.number().int().min(1).optional(),
      failure_rate: z.number().gt(0).max(1).optional(),
      window_s: z.number().int().min(1).optional(),
      open_s: z.number().int().min(1).optional(),
      half_open_probes: z.number().int().min(1).optional(),
    })
    .optional(),
  fallback: z
    .strictObject({
      other_keys: z.boolean().optional(),
      route_targets: z.boolean().optional(),
      global_route: z.string().min(1).nullable().optional(),
    })
    .optional(),
  limits: z.strictObject({ global: rate.optional(), ip: rate.optional(), model: z.record(z.string(), rate).optional() }).optional(),
  redis: z.strictObject({ on_failure: z.enum(['open', 'closed']).optional() }).optional(),
})

export type PolicyDocument = z.infer<typeof policySchema>

export const POLICY_DEFAULTS = {
  keys: { strategy: 'round-robin' as 'round-robin' | 'priority' | 'least-used' | 'weighted' },
  retry: { max_attempts: 3, backoff_ms: { base: 200, max: 5000 }, retry_after_cap_ms: 30_000 },
  timeouts_ms: { connect: 5_000, first_byte: 30_000, total: 600_000, budget: 120_000 },
  circuit: { consecutive_failures: 5, failure_rate: 0.5, window_s: 30, open_s: 30, half_open_probes: 1 },
  fallback: { other_keys: true, route_targets: true, global_route: null as string | null },
  limits: { global: {}, ip: {}, model: {} } as { global: z.infer<typeof rate>; ip: z.infer<typeof rate>; model: Record<string, z.infer<typeof rate>> },
  redis: { on_failure: 'open' as 'open' | 'closed' },
}

export type EffectivePolicy = typeof POLICY_DEFAULTS

export function parsePolicy(raw: unknown): PolicyDocument {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalidRequest('A policy must be a JSON object.', null, 'invalid_policy')
  const result = policySchema.safeParse(raw)
  if (result.success) return result.data
  const problems = result.error.issues.map((i) => {
    const where = i.path.length ? i.path.join('.') : '(top level)'
    const keys = i.code === 'unrecognized_keys' ? ` ${i.keys.map((k) => `'${k}'`).join(', ')}` : ''
    return `${where}: ${i.message}${keys}`
  })
  throw invalidRequest(`Invalid policy: ${problems.join('; ')}`, String(result.error.issues[0]?.path.join('.') ?? ''), 'invalid_policy')
}

export function withPolicyDefaults(doc: PolicyDocument = {}): EffectivePolicy {
  const d = POLICY_DEFAULTS
  return {
    keys: { ...d.keys, ...doc.keys },
    retry: { ...d.retry, ...doc.retry, backoff_ms: { ...d.retry.backoff_ms, ...doc.retry?.backoff_ms } },
    timeouts_ms: { ...d.timeouts_ms, ...doc.timeouts_ms },
    circuit: { ...d.circuit, ...doc.circuit },
    fallback: { ...d.fallback, ...doc.fallback },
    limits: { global: { ...doc.limits?.global }, ip: { ...doc.limits?.ip }, model: { ...doc.limits?.model } },
    redis: { ...d.redis, ...doc.redis },
  }
}
