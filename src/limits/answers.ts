/**
 * What a client hears about limits: OpenAI's x-ratelimit-* headers on every answer, and 429s (or a 503
 * when limits cannot be checked) in OpenAI's error shape with Retry-After.
 */
import { ProxyError } from '../core/errors.js'
import { formatWindow } from '../core/windows.js'
import type { QuotaRule, RateRule, RateState } from './types.js'

/**
 * A duration in OpenAI's header format (Go's time.Duration): '20ms', '1s', '1.5s', '6m0s', '1h2m3s'.
 */
export function formatReset(ms: number): string {
  const total = Math.max(0, Math.ceil(ms))
  if (total < 1000) return `${total}ms`
  const h = Math.floor(total / 3_600_000)
  const m = Math.floor((total % 3_600_000) / 60_000)
  const s = (total % 60_000) / 1000
  const sec = `${Number.isInteger(s) ? s : Number(s.toFixed(3))}s`
  if (h > 0) return `${h}h${m}m${sec}`
  if (m > 0) return `${m}m${sec}`
  return sec
}

interface Candidate {
  limit: number
  remaining: number
  resetMs: number
}

/** The tightest limit of a kind: least remaining; on a tie, the one that takes longer to refill. */
function tightest(candidates: Candidate[]): Candidate | null {
  let best: Candidate | null = null
  for (const c of candidates) {
    if (!best || c.remaining < best.remaining || (c.remaining === best.remaining && c.resetMs > best.resetMs)) best = c
  }
  return best
}

/**
 * x-ratelimit-{limit,remaining,reset}-{requests,tokens} for the tightest request limit and the tightest
 * token limit (token quotas count as token limits, resetting when their period ends). No header for a
 * kind no limit applies to.
 */
export function rateLimitHeaders(rules: readonly RateRule[], states: readonly RateState[], quotas: readonly QuotaRule[], quotaUsed: readonly number[], now: number): Record<string, string> {
  const requests: Candidate[] = []
  const tokens: Candidate[] = []
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!
    const s = states[i]!
    ;(r.kind === 'requests' ? requests : tokens).push({ limit: r.limit, remaining: s.remaining, resetMs: s.resetMs })
  }
  for (let i = 0; i < quotas.length; i++) {
    const q = quotas[i]!
    tokens.push({ limit: q.limit, remaining: Math.max(0, q.limit - quotaUsed[i]!), resetMs: q.endsAt - now })
  }
  const headers: Record<string, string> = {}
  const r = tightest(requests)
  if (r) {
    headers['x-ratelimit-limit-requests'] = String(r.limit)
    headers['x-ratelimit-remaining-requests'] = String(r.remaining)
    headers['x-ratelimit-reset-requests'] = formatReset(r.resetMs)
  }
  const t = tightest(tokens)
  if (t) {
    headers['x-ratelimit-limit-tokens'] = String(t.limit)
    headers['x-ratelimit-remaining-tokens'] = String(t.remaining)
    headers['x-ratelimit-reset-tokens'] = formatReset(t.resetMs)
  }
  return headers
}

function retryHeaders(retryAfterMs: number, shouldRetry: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
    'retry-after-ms': String(Math.max(0, Math.ceil(retryAfterMs))),
  }
  // The OpenAI SDKs honour x-should-retry: no point retrying what cannot succeed for hours (or ever).
  if (!shouldRetry) h['x-should-retry'] = 'false'
  return h
}

function whose(rule: RateRule): string {
  switch (rule.scope) {
    case 'client':
      return `client '${rule.subject}'`
    case 'team':
      return `team '${rule.subject}' (all its clients together)`
    case 'ip':
      return `IP ${rule.subject}`
    case 'model':
      return `model '${rule.subject}'`
    default:
      return 'this proxy (all clients together)'
  }
}

/** 429 rate_limit_exceeded, worded like OpenAI's. */
export function rateLimited(rule: RateRule, state: RateState, cost: number, retryAfterMs: number, never: boolean, headers: Record<string, string>): ProxyError {
  const window = formatWindow(rule.windowMs)
  let message: string
  if (never) {
    message =
      `Request too large for ${whose(rule)} on tokens per ${window}: limit ${rule.limit}, requested about ${cost} ` +
      '(the prompt estimate plus max_tokens). Send fewer or shorter messages, or lower max_tokens.'
  } else if (rule.kind === 'requests') {
    message = `Rate limit reached for ${whose(rule)} on requests per ${window}: limit ${rule.limit}. Please try again in ${formatReset(retryAfterMs)}.`
  } else {
    message =
      `Rate limit reached for ${whose(rule)} on tokens per ${window}: limit ${rule.limit}, used ${rule.limit - state.remaining}, ` +
      `requested about ${cost}. Please try again in ${formatReset(retryAfterMs)}.`
  }
  return new ProxyError({
    status: 429,
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    message,
    headers: { ...headers, ...retryHeaders(retryAfterMs, !never) },
  })
}

/** 429 insufficient_quota: the client's daily or monthly token quota is used up. */
export function quotaExhausted(quota: QuotaRule, used: number, cost: number, retryAfterMs: number, headers: Record<string, string>): ProxyError {
  const period = quota.period === 'day' ? 'daily' : 'monthly'
  const unit = quota.period === 'day' ? 'UTC day' : 'UTC month'
  return new ProxyError({
    status: 429,
    type: 'insufficient_quota',
    code: 'insufficient_quota',
    message:
      `You exceeded your current quota: ${quota.owner ?? `client '${quota.client}'`} may use ${quota.limit} tokens per ${unit} (its ${period} quota), ` +
      `has used ${used}, and this request needs about ${cost} more. The quota refills at ${new Date(quota.endsAt).toISOString()}.`,
    headers: { ...headers, ...retryHeaders(retryAfterMs, false) },
  })
}

/** 503 when Redis is unreachable and the policy says to fail closed. */
export function limitsUnavailable(reason: string): ProxyError {
  return new ProxyError({
    status: 503,
    type: 'service_unavailable',
    code: 'service_unavailable',
    message:
      `Rate limits cannot be checked right now: the shared limit store (Redis) is unreachable (${reason}), and this proxy ` +
      "is set to refuse requests then (policy redis.on_failure = 'closed'). Please try again shortly.",
    headers: { 'retry-after': '1' },
  })
}
