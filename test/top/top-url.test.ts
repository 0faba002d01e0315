/**
 * `proxy top --url` on the server's own machine: a URL that names the local server (per its
 * server.json) is reached with the local admin.token, no --admin-key needed; any other server still
 * needs a key, and the error says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sameServer } from '../../src/cli/admin-client.js'
import type { StatsReport } from '../../src/server/admin/stats.js'
import type { RunningProxy } from '../../src/server/start.js'
import { cli, startTestProxy, tempDataDir } from '../helpers/proxy.js'

describe('proxy top --url', () => {
  const local = tempDataDir()
  const remote = tempDataDir()
  let localProxy: RunningProxy
  let remoteProxy: RunningProxy

  beforeAll(async () => {
    expect((await cli(local.dir, ['providers', 'add', 'here', '--type', 'mock'])).code).toBe(0)
    expect((await cli(remote.dir, ['providers', 'add', 'there', '--type', 'mock'])).code).toBe(0)
    localProxy = await startTestProxy(local.dir)
    remoteProxy = await startTestProxy(remote.dir)
  })
  afterAll(async () => {
    await localProxy?.close()
    await remoteProxy?.close()
    local.cleanup()
    remote.cleanup()
  })

  it("reaches the local server by its URL without --admin-key, using the data dir's admin.token", async () => {
    for (const url of [localProxy.url, `${localProxy.url}/`]) {
      const res = await cli(local.dir, ['top', '--once', '--json', '--url', url])
      expect(res.stderr, url).toBe('')
      expect(res.code).toBe(0)
      expect((JSON.parse(res.stdout) as StatsReport).object).toBe('proxy.stats')
    }
    const frame = await cli(local.dir, ['top', '--once', '--url', localProxy.url])
    expect(frame.code).toBe(0)
    expect(frame.stdout).toContain(`proxy top  ${localProxy.url}`)
  })

  it('says another server needs an admin key, naming the local one', async () => {
    const res = await cli(local.dir, ['top', '--once', '--url', remoteProxy.url])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain(`The proxy at ${remoteProxy.url} refused the admin credential (401)`)
    expect(res.stderr).toContain(`--url ${remoteProxy.url} needs an admin client key: pass --admin-key (or PROXY_ADMIN_KEY); it is not the local server (${localProxy.url} in`)
  })

  it('counts loopback names, default ports and a trailing slash as the same server, nothing else', () => {
    expect(sameServer('http://127.0.0.1:8000', 'http://localhost:8000/')).toBe(true)
    expect(sameServer('http://127.0.0.1:8000', 'http://[::1]:8000')).toBe(true)
    expect(sameServer('http://LOCALHOST:80', 'http://127.0.0.1')).toBe(true)
    expect(sameServer('http://127.0.0.1:8000', 'http://127.0.0.1:8001')).toBe(false)
    expect(sameServer('http://127.0.0.1:8000', 'https://127.0.0.1:8000')).toBe(false)
    expect(sameServer('http://127.0.0.1:8000', 'http://10.0.0.5:8000')).toBe(false)
    expect(sameServer('http://127.0.0.1:8000', 'http://127.0.0.1:8000/behind/a/prefix')).toBe(false)
    expect(sameServer('http://127.0.0.1:8000', 'not a url')).toBe(false)
  })
})
