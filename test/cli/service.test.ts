import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateFernetKey } from '../../src/store/fernet.js'
import { cli, tempDataDir, testEnv } from '../helpers/proxy.js'

const hasAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0
const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset']).status === 0

describe('proxy service', () => {
  const tmp = tempDataDir()
  afterAll(() => tmp.cleanup())

  it('prints a hardened unit with absolute paths and writes nothing', async () => {
    const res = await cli(tmp.dir, ['service', 'print', '--user', 'llm', '--data-dir', '/srv/proxy-data', '--port', '9000'])
    expect(res.code).toBe(0)
    const unit = res.stdout
    const flags = availableParallelism() === 1 ? '--no-memory-reducer --max-semi-space-size=4 --min-semi-space-size=4 --single-threaded-gc' : '--no-memory-reducer --max-semi-space-size=4 --min-semi-space-size=4'
    expect(unit).toContain(`ExecStart=${process.execPath} ${flags} ${path.resolve('bin/proxy.js')} serve --data-dir /srv/proxy-data --drain-seconds 25 --port 9000`)
    expect(unit).toContain('TimeoutStopSec=40')
    for (const line of ['Environment=NODE_ENV=production PROXY_KEYCHAIN=off MALLOC_TRIM_THRESHOLD_=131072', 'User=llm', 'Restart=on-failure', 'EnvironmentFile=-/etc/proxy/proxy.env', 'NoNewPrivileges=true', 'ProtectSystem=strict', 'ReadWritePaths=/srv/proxy-data', 'PrivateTmp=true', 'WantedBy=multi-user.target']) {
      expect(unit).toContain(line)
    }
    // V8's JIT needs W^X exceptions: this protection would crash node.
    expect(unit).not.toContain('MemoryDenyWriteExecute')
  })

  it.skipIf(!hasTaskset)('on a one-CPU machine, the unit also has V8 collect garbage on the main thread, and says why', () => {
    const res = spawnSync('taskset', ['-c', '0', process.execPath, path.resolve('bin/proxy.js'), 'service', 'print', '--data-dir', '/srv/proxy-data'], { env: testEnv(tmp.dir), encoding: 'utf8' })
    expect(res.status).toBe(0)
    expect(res.stdout).toContain(`ExecStart=${process.execPath} --no-memory-reducer --max-semi-space-size=4 --min-semi-space-size=4 --single-threaded-gc ${path.resolve('bin/proxy.js')} serve`)
    expect(res.stdout).toContain('# --single-threaded-gc: this machine had one CPU when the unit was written')
  })

  it('with --credential, the unit hands the master key over as a systemd credential, where proxy finds it', async () => {
    const res = await cli(tmp.dir, ['service', 'print', '--credential', '/etc/proxy/master-key'])
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('LoadCredential=proxy-master-key:/etc/proxy/master-key\n')
    expect((await cli(tmp.dir, ['service', 'print'])).stdout).not.toContain('LoadCredential')
    expect(await cli(tmp.dir, ['service', 'print', '--credential', 'master-key'])).toMatchObject({ code: 1, stderr: expect.stringContaining('--credential must be an absolute path') })

    // What systemd does at start: the file appears in $CREDENTIALS_DIRECTORY under the credential's name.
    const data = path.join(tmp.dir, 'credential-data')
    const creds = path.join(tmp.dir, 'credentials')
    mkdirSync(creds, { mode: 0o700 })
    writeFileSync(path.join(creds, 'proxy-master-key'), `${generateFernetKey()}\n`, { mode: 0o400 })
    const env = { PROXY_MASTER_KEY: '', CREDENTIALS_DIRECTORY: creds }
    expect((await cli(data, ['keys', 'ls'], { env })).code).toBe(0)
    const doctor = await cli(data, ['doctor', '--skip-providers'], { env })
    expect(doctor.code).toBe(0)
    expect(doctor.stdout).toMatch(/master key +from the systemd credential .*credentials\/proxy-master-key/)
    expect(existsSync(path.join(data, 'master.key'))).toBe(false)
  })

  it('refuses a relative data dir and a bad user name', async () => {
    expect(await cli(tmp.dir, ['service', 'print', '--data-dir', 'data'])).toMatchObject({ code: 1, stderr: expect.stringContaining('absolute path') })
    expect(await cli(tmp.dir, ['service', 'print', '--user', 'bad user'])).toMatchObject({ code: 1, stderr: expect.stringContaining('not a valid user name') })
  })

  it('installs the unit and a private environment file, and will not overwrite without --force', async () => {
    const unitDir = path.join(tmp.dir, 'units')
    const envFile = path.join(tmp.dir, 'etc', 'proxy.env')
    const args = ['service', 'install', '--unit-dir', unitDir, '--env-file', envFile, '--name', 'proxy-test', '--data-dir', '/var/lib/proxy-test']
    const first = await cli(tmp.dir, args)
    expect(first.code).toBe(0)
    expect(first.stdout).toContain('systemctl daemon-reload && sudo systemctl enable --now proxy-test')
    const unit = readFileSync(path.join(unitDir, 'proxy-test.service'), 'utf8')
    expect(unit).toContain('StateDirectory=proxy-test')
    expect(statSync(envFile).mode & 0o777).toBe(0o600)
    expect(await cli(tmp.dir, args)).toMatchObject({ code: 1, stderr: expect.stringContaining('--force') })
    expect((await cli(tmp.dir, [...args, '--force'])).code).toBe(0)
  })

  it.skipIf(!hasAnalyze)('passes systemd-analyze verify', async () => {
    const res = await cli(tmp.dir, ['service', 'print', '--data-dir', '/var/lib/proxy-verify'])
    const file = path.join(tmp.dir, 'proxy-verify.service')
    writeFileSync(file, res.stdout)
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    expect(verify.stderr.split('\n').filter((l) => l.includes('proxy-verify'))).toEqual([])
    expect(verify.status).toBe(0)
  })
  if (!hasAnalyze) console.warn('SKIPPED systemd-analyze verify: systemd-analyze is not installed on this machine')
})
