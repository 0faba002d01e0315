/**
 * The policy document: how the gateway retries, times out, breaks circuits, picks keys and falls back,
 * and which limits apply. Stored as the operator wrote it; `withPolicyDefaults` fills the rest, so
 * `proxy policy show` can print the effective values. Unknown fields are errors: a typo in a policy
 * must not silently leave a safety setting at its default.
 *
 * Policies layer: the defaults, then the policy named 'global', then the route's policy, then the
 * client's policy (`effectivePolicy`). A field set in a later layer wins; objects merge field by field.
 */
import * as z from './zod.js'
import { parseRate, RATE_SYNTAX } from './windows.js'
import { invalidRequest } from './errors.js'
import { parseDuration } from './duration.js'

const ms = z.number().int().min(0)
const windowSpec = z.string().refine((s) => parseRate(s) !== null, { message: `expected ${RATE_SYNTAX}` })
const windows = z.union([windowSpec, z.array(windowSpec).min(1)])
const rate = z.strictObject({
  rpm: z.number().int().min(1).optional().describe('requests per minute'),
  tpm: z.number().int().min(1).optional().describe('tokens per minute'),
  requests: windows.optional().describe("sliding windows of requests, e.g. '100/10s' or ['100/10s', '5000/1d'] (1s to 1d)"),
  tokens: windows.optional().describe("sliding windows of tokens, e.g. '2000000/1h' (estimated before the call, settled with the reported usage)"),
})

export const KEY_STRATEGIES = ['round-robin', 'priority', 'least-used', 'weighted'] as const
export type KeyStrategy = (typeof KEY_STRATEGIES)[number]

export const policySchema = z
  .strictObject({
    keys: z
      .strictObject({
        strategy: z
          .enum(KEY_STRATEGIES)
          .optional()
          .describe(
            'how a provider key is picked: round-robin (rotate), priority (lowest --priority first, the next only when it is unavailable), least-used (fewest requests in flight, then fewest recent requests), weighted (random by --weight)',
          ),
        cooldown_ms: ms.optional().describe('how long a key rests after an upstream 429 that carries no Retry-After'),
      })
      .optional()
      .describe('upstream key selection'),
    retry: z
      .strictObject({
        max_attempts: z.number().int().min(1).max(20).optional().describe('upstream calls per request, fallbacks included'),
        backoff_ms: z
          .strictObject({
            base: ms.optional().describe('first backoff ceiling; doubles per retry (full jitter: the wait is random in [0, ceiling])'),
            max: ms.optional().describe('largest backoff ceiling'),
          })
          .optional()
          .describe('wait before calling a provider again after it failed'),
        retry_after_cap_ms: ms.optional().describe("longest wait for an upstream's Retry-After before giving up"),
      })
      .optional(),
    timeouts_ms: z
      .strictObject({
        connect: ms.min(1).optional().describe('TCP/TLS connect timeout (read from the global policy at server start)'),
        first_byte: ms.min(1).optional().describe("per attempt: time to the upstream's response headers"),
        total: ms.min(1).optional().describe('per attempt: the whole upstream exchange, body included'),
        budget: ms
          .min(1)
          .optional()
          .describe('per request: all attempts and waits until an answer (for streams: until the first chunk)'),
      })
      .optional(),
    circuit: z
      .strictObject({
        consecutive_failures: z.number().int().min(1).optional().describe('failures in a row that open a circuit'),
        failure_rate: z.number().gt(0).max(1).optional().describe('failure share over the window that opens a circuit'),
        min_requests: z.number().int().min(1).optional().describe('calls in the window before failure_rate is judged'),
        window_s: z.number().int().min(1).max(600).optional().describe('the failure-rate window'),
        open_s: z.number().int().min(1).optional().describe('how long a circuit stays open before probing'),
        half_open_probes: z.number().int().min(1).optional().describe('calls let through while half-open'),
      })
      .optional()
      .describe('circuit breakers per provider and per key; fed by 5xx, timeouts and broken connections'),
    fallback: z
      .strictObject({
        other_keys: z.boolean().optional().describe("try the provider's other keys"),
        route_targets: z.boolean().optional().describe("try the route's next targets"),
        global_route: z.string().min(1).nullable().optional().describe('a model name whose route is tried last'),
      })
      .optional(),
    limits: z
      .strictObject({
        global: rate.optional().describe('all requests together'),
        ip: rate.optional().describe("per client IP address (the connection's peer)"),
        model: z.record(z.string(), rate).optional().describe('per requested model name'),
      })
      .optional()
      .describe("rate limits, read from the policy named 'global'; client limits are set with 'proxy clients add/set'"),
    cache: z
      .strictObject({
        ttl: z
          .string()
          .refine((s) => parseDuration(s) !== null, { message: "expected a duration such as '90s', '10m', '12h' or '7d'" })
          .optional()
          .describe("how long an answer is served from the cache (default '10m')"),
        max_bytes: z
          .number()
          .int()
          .min(1024)
          .optional()
          .describe('memory the answers cached under this policy may take on each instance (an LRU, default 64 MiB); a larger answer is not cached'),
        per_client: z.boolean().optional().describe("a separate cache per client key; by default clients share answers to the same request"),
        allow_multiple_choices: z.boolean().optional().describe('also cache answers to requests that ask for several choices (n > 1)'),
      })
      .nullable()
      .optional()
      .describe("the exact response cache (docs/cache.md); off unless a policy sets it; null turns it off in a later layer"),
    redis: z
      .strictObject({
        on_failure: z
          .enum(['open', 'closed'])
          .optional()
          .describe('when Redis (PROXY_REDIS_URL) is unreachable: open serves with local in-memory limits, closed answers 503'),
      })
      .optional(),
  })
  .describe('A proxy policy. Every field is optional; missing ones take the defaults.')

export type PolicyDocument = z.infer<typeof policySchema>

export const POLICY_DEFAULTS = {
  keys: { strategy: 'round-robin' as KeyStrategy, cooldown_ms: 10_000 },
  retry: { max_attempts: 3, backoff_ms: { base: 200, max: 5000 }, retry_after_cap_ms: 30_000 },
  timeouts_ms: { connect: 5_000, first_byte: 30_000, total: 600_000, budget: 120_000 },
  circuit: { consecutive_failures: 5, failure_rate: 0.5, min_requests: 10, window_s: 30, open_s: 30, half_open_probes: 1 },
  fallback: { other_keys: true, route_targets: true, global_route: null as string | null },
  limits: { global: {}, ip: {}, model: {} } as { global: z.infer<typeof rate>; ip: z.infer<typeof rate>; model: Record<string, z.infer<typeof rate>> },
  redis: { on_failure: 'open' as 'open' | 'closed' },
  cache: null as CachePolicy | null,
}

/** The cache settings of an effective policy; absent (null) when no layer turns the cache on. */
export interface CachePolicy {
  ttl_ms: number
  max_bytes: number
  per_client: boolean
  allow_multiple_choices: boolean
}

export const CACHE_DEFAULTS = { ttl: '10m', max_bytes: 64 * 1024 * 1024 }

export type EffectivePolicy = typeof POLICY_DEFAULTS

/** The policy document's JSON schema (draft 2020-12), as published in docs/policies.md and `proxy policy schema`. */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema, { io: 'input' }) as Record<string, unknown>
}

export function parsePolicy(raw: unknown): PolicyDocument {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalidRequest('A policy must be a JSON object.', null, 'invalid_policy')
  const result = policySchema.safeParse(raw)
  if (result.success) return result.data
  const problems = result.error.issues.map((i) => {
    const where = i.path.length ? i.path.join('.') : '(top level)'
    const keys = i.code === 'unrecognized_keys' ? ` ${i.keys.map((k) => `'${k}'`).join(', ')}` : ''
    return `${where}: ${i.message}${keys}`
  })
  const first = result.error.issues[0]
  const param = first ? [...first.path, ...(first.code === 'unrecognized_keys' ? [first.keys[0]] : [])].join('.') : ''
  throw invalidRequest(`Invalid policy: ${problems.join('; ')}`, param, 'invalid_policy')
}

/**
 * Layers policy documents: later ones win field by field (objects merge, anything else replaces).
 * `undefined` layers are skipped, so callers can pass absent route or client policies as they are.
 */
export function mergePolicyDocuments(...layers: Array<PolicyDocument | null | undefined>): PolicyDocument {
  let out: Record<string, unknown> = {}
  for (const layer of layers) if (layer) out = mergeObjects(out, layer as Record<string, unknown>)
  return out as PolicyDocument
}

function mergeObjects(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue
    const prev = out[k]
    out[k] = isPlainObject(v) && isPlainObject(prev) ? mergeObjects(prev, v) : v
  }
  return out
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

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
    cache: doc.cache
      ? {
          ttl_ms: parseDuration(doc.cache.ttl ?? CACHE_DEFAULTS.ttl)!,
          max_bytes: doc.cache.max_bytes ?? CACHE_DEFAULTS.max_bytes,
          per_client: doc.cache.per_client ?? false,
          allow_multiple_choices: doc.cache.allow_multiple_choices ?? false,
        }
      : null,
  }
}

/** The policy that applies: defaults < global < route policy < client policy. */
export function effectivePolicy(layers: { global?: PolicyDocument | null; route?: PolicyDocument | null; client?: PolicyDocument | null }): EffectivePolicy {
  return withPolicyDefaults(mergePolicyDocuments(layers.global, layers.route, layers.client))
}
