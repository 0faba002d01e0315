/**
 * `proxy doctor` checks every provider key against its upstream (the providers-test logic, through
 * doctor's extra-checks hook): one PASS/FAIL line per key, a non-zero exit when one fails, and never a
 * secret in the output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOpenAI, type FakeUpstream } from '../fakes/openai-upstream.js'
import { cli, tempDataDir } from '../helpers/proxy.js'

const GOOD = 'sk-good-upstream-key'
const BAD = 'sk-revoked-upstream-key'

describe('proxy doctor: provider keys', () => {
  const data = tempDataDir()
  let upstream: FakeUpstream

  beforeAll(async () => {
    upstream = await startFakeOpenAI()
    upstream.respond((req) =>
      req.headers.authorization === `Bearer ${GOOD}`
        ? undefined
        : { kind: 'json', status: 401, body: { error: { message: `Incorrect API key provided: ${BAD}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } },
    )
    expect((await cli(data.dir, ['providers', 'add', 'fakeai', '--type', 'openai', '--base-url', upstream.url])).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'fakeai', '--label', 'good'], { stdin: GOOD })).code).toBe(0)
    expect((await cli(data.dir, ['keys', 'add', 'fakeai', '--label', 'bad'], { stdin: BAD })).code).toBe(0)
    expect((await cli(data.dir, ['models', 'add', 'gpt-4o-mini', '--target', 'fakeai/gpt-4o-mini'])).code).toBe(0)
  })
  afterAll(async () => {
    await upstream?.close()
    data.cleanup()
  })

  it('prints a pass and a fail line per key and exits non-zero', async () => {
    const res = await cli(data.dir, ['doctor'])
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(/PASS\s+key fakeai\/good\s+listed models: 1 model in \d+ ms/)
    expect(res.stdout).toMatch(/FAIL\s+key fakeai\/bad\s+401 upstream_auth_failed: .*rejected.* \(\d+ ms\)/)
    expect(res.stderr).toContain('1 check(s) failed')
    expect(res.stdout + res.stderr).not.toContain(GOOD)
    expect(res.stdout + res.stderr).not.toContain(BAD)
    // both keys were really tried against the upstream
    expect(upstream.requests.filter((r) => r.path.endsWith('/models')).map((r) => r.headers.authorization)).toEqual([`Bearer ${GOOD}`, `Bearer ${BAD}`])
  })

  it('reports the keys in --json', async () => {
    const res = await cli(data.dir, ['doctor', '--json'])
    expect(res.code).toBe(1)
    const report = JSON.parse(res.stdout) as { ok: boolean; checks: Array<{ name: string; ok: boolean }> }
    expect(report.ok).toBe(false)
    expect(report.checks.filter((c) => c.name.startsWith('key ')).map((c) => [c.name, c.ok])).toEqual([
      ['key fakeai/good', true],
      ['key fakeai/bad', false],
    ])
  })

  it('passes once the bad key is disabled, and --skip-providers contacts nobody', async () => {
    expect((await cli(data.dir, ['keys', 'disable', 'bad'])).code).toBe(0)
    const res = await cli(data.dir, ['doctor'])
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/PASS\s+key fakeai\/good/)
    expect(res.stdout).not.toContain('fakeai/bad')
    const before = upstream.requests.length
    const skipped = await cli(data.dir, ['doctor', '--skip-providers'])
    expect(skipped.code).toBe(0)
    expect(skipped.stdout).not.toContain('key fakeai')
    expect(upstream.requests.length).toBe(before)
  })

  it('fails a routed provider that cannot be tested at all, and only warns for an unused one', async () => {
    const other = tempDataDir()
    try {
      expect((await cli(other.dir, ['providers', 'add', 'nokeys', '--type', 'openai', '--base-url', upstream.url])).code).toBe(0)
      const unused = await cli(other.dir, ['doctor'])
      expect(unused.code).toBe(0)
      expect(unused.stdout).toMatch(/WARN\s+provider nokeys\s+.*no active key.*\(no route uses it\)/)
      expect((await cli(other.dir, ['models', 'add', 'm', '--target', 'nokeys/m'])).code).toBe(0)
      const routed = await cli(other.dir, ['doctor'])
      expect(routed.code).toBe(1)
      expect(routed.stdout).toMatch(/FAIL\s+provider nokeys\s+.*no active key/)
    } finally {
      other.cleanup()
    }
  })
})
