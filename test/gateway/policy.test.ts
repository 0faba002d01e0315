import { describe, expect, it } from 'vitest'
import { effectivePolicy, mergePolicyDocuments, parsePolicy, POLICY_DEFAULTS, withPolicyDefaults } from '../../src/core/policy-schema.js'

describe('policy documents', () => {
  it('layers field by field: later layers win, objects merge, absent layers are skipped', () => {
    const merged = mergePolicyDocuments(
      { retry: { max_attempts: 2, backoff_ms: { base: 10 } }, fallback: { global_route: 'fb' } },
      undefined,
      { retry: { backoff_ms: { max: 99 } } },
      { fallback: { global_route: null } },
    )
    expect(merged).toEqual({ retry: { max_attempts: 2, backoff_ms: { base: 10, max: 99 } }, fallback: { global_route: null } })
  })

  it('client beats route beats global beats defaults', () => {
    const p = effectivePolicy({
      global: { retry: { max_attempts: 1 }, keys: { strategy: 'priority' }, timeouts_ms: { budget: 5000 } },
      route: { retry: { max_attempts: 2 }, timeouts_ms: { first_byte: 700 } },
      client: { retry: { max_attempts: 3 } },
    })
    expect(p.retry.max_attempts).toBe(3)
    expect(p.keys.strategy).toBe('priority')
    expect(p.timeouts_ms).toEqual({ ...POLICY_DEFAULTS.timeouts_ms, budget: 5000, first_byte: 700 })
    expect(p.retry.backoff_ms).toEqual(POLICY_DEFAULTS.retry.backoff_ms)
  })

  it('fills every default', () => {
    expect(withPolicyDefaults({})).toEqual({ ...POLICY_DEFAULTS, limits: { global: {}, ip: {}, model: {} } })
  })

  it('rejects bad documents naming the field, as param and in the message', () => {
    const check = (doc: unknown) => {
      try {
        parsePolicy(doc)
      } catch (e) {
        return e as { param: string; message: string }
      }
      throw new Error('accepted')
    }
    expect(check({ retry: { max_attempts: 0 } })).toMatchObject({ param: 'retry.max_attempts', message: expect.stringContaining('retry.max_attempts') })
    expect(check({ circuit: { window_s: 601 } }).param).toBe('circuit.window_s')
    expect(check({ circuit: { open_seconds: 3 } })).toMatchObject({ param: 'circuit.open_seconds', message: expect.stringContaining("'open_seconds'") })
    expect(check({ keys: { strategy: 'random' } }).param).toBe('keys.strategy')
    expect(check([]).message).toContain('JSON object')
  })
})
