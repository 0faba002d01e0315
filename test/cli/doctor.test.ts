import { chmodSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { cli, tempDataDir } from '../helpers/proxy.js'

describe('proxy doctor', () => {
  const tmp = tempDataDir()
  afterAll(() => tmp.cleanup())

  it('passes on a healthy store and says where the master key comes from', async () => {
    await cli(tmp.dir, ['clients', 'add', 'someone'])
    const res = await cli(tmp.dir, ['doctor', '--json'])
    expect(res.code).toBe(0)
    const report = JSON.parse(res.stdout) as { ok: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }
    expect(report.ok).toBe(true)
    expect(report.checks.find((c) => c.name === 'master key')?.detail).toContain('from env')
    expect(report.checks.find((c) => c.name === 'store and migrations')?.ok).toBe(true)
  })

  it('fails with a non-zero exit when Redis is configured but unreachable', async () => {
    const res = await cli(tmp.dir, ['doctor'], { env: { PROXY_REDIS_URL: 'redis://:secretpw@127.0.0.1:1' } })
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(/FAIL\s+redis/)
    expect(res.stdout).not.toContain('secretpw')
  })

  it('flags a data directory others can read', async () => {
    chmodSync(tmp.dir, 0o755)
    const res = await cli(tmp.dir, ['doctor'])
    chmodSync(tmp.dir, 0o700)
    expect(res.code).toBe(1)
    expect(res.stdout).toMatch(/FAIL\s+data directory .*chmod 700/)
  })
})
