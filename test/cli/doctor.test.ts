import { chmodSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateFernetKey } from '../../src/store/fernet.js'
import { cli, TEST_MASTER_KEY, tempDataDir } from '../helpers/proxy.js'

interface Report {
  ok: boolean
  checks: Array<{ name: string; ok: boolean; warn?: boolean; detail: string }>
}

const doctor = async (dir: string, env: Record<string, string> = {}) => {
  const res = await cli(dir, ['doctor', '--json'], { env })
  const report = JSON.parse(res.stdout) as Report
  return { code: res.code, report, check: (name: string) => report.checks.find((c) => c.name === name) }
}

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

  it('with PROXY_MASTER_KEY, names it and warns about nothing', async () => {
    const { code, report, check } = await doctor(tmp.dir)
    expect(code).toBe(0)
    expect(check('master key')?.detail).toBe('from environment variable PROXY_MASTER_KEY; it decrypts this store')
    expect(check('OS keychain')).toEqual({ name: 'OS keychain', ok: true, detail: 'not used: the master key comes from PROXY_MASTER_KEY' })
    expect(report.checks.filter((c) => c.warn || !c.ok)).toEqual([])
    const text = await cli(tmp.dir, ['doctor'])
    expect(text.stdout).not.toContain('WARN')
    expect(text.stdout).not.toContain('key file is used instead')
    expect(text.stdout).toContain('All checks passed.')
  })

  it('with PROXY_MASTER_KEY, warns about a master.key file that holds another key, and not about one that holds the same', async () => {
    const file = path.join(tmp.dir, 'master.key')
    try {
      writeFileSync(file, generateFernetKey() + '\n', { mode: 0o600 })
      const other = await doctor(tmp.dir)
      expect(other.code).toBe(0)
      expect(other.check('master key file')).toMatchObject({ ok: false, warn: true })
      expect(other.check('master key file')?.detail).toContain(`${file} holds another key than PROXY_MASTER_KEY: without the variable this store would not open`)
      writeFileSync(file, TEST_MASTER_KEY + '\n', { mode: 0o600 })
      expect((await doctor(tmp.dir)).check('master key file')).toBeUndefined()
    } finally {
      rmSync(file, { force: true })
    }
  })

  it('with the key file, says so; it warns only when a keychain could have held the key and none was available', async () => {
    const own = tempDataDir()
    try {
      const noEnvKey = { PROXY_MASTER_KEY: '' }
      expect((await cli(own.dir, ['clients', 'add', 'someone'], { env: noEnvKey })).code).toBe(0)
      const off = await doctor(own.dir, noEnvKey)
      expect(off.code).toBe(0)
      expect(off.check('master key')?.detail).toBe(`from the key file ${path.join(own.dir, 'master.key')}; it decrypts this store`)
      expect(off.check('OS keychain')).toMatchObject({ ok: true, detail: `turned off by PROXY_KEYCHAIN=off; the master key is in ${path.join(own.dir, 'master.key')}` })
      expect(off.report.checks.filter((c) => c.warn || !c.ok)).toEqual([])

      // keychain not turned off, but none to be had (as on a headless VM)
      const none = await doctor(own.dir, { ...noEnvKey, PROXY_KEYCHAIN: '' })
      expect(none.code).toBe(0)
      expect(none.check('OS keychain')).toMatchObject({ ok: false, warn: true })
      expect(none.check('OS keychain')?.detail).toMatch(/^not available \(no keychain configured\), so the master key is kept in .*master\.key beside the store.*set PROXY_MASTER_KEY/)
    } finally {
      own.cleanup()
    }
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
