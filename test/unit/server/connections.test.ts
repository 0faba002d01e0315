import { describe, expect, it } from 'vitest'
import { defaultMaxConnections, openFileLimit, serverOptions } from '../../../src/server/connections.js'

const limits = (soft: string, hard = soft) => `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63704                63704                processes \nMax open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     \nMax locked memory         8388608              8388608              bytes     \n`

describe('connection limits', () => {
  it('caps connections below the soft open-file limit, keeping a quarter (at least 320) for everything else', () => {
    expect(openFileLimit(limits('1024', '4096'))).toBe(1024)
    expect(defaultMaxConnections(limits('1024'))).toBe(704)
    expect(defaultMaxConnections(limits('65536'))).toBe(49_152)
    expect(defaultMaxConnections(limits('256'))).toBe(64)
    // unreadable or unlimited: as if the limit were 4096
    expect(openFileLimit(limits('unlimited'))).toBeNull()
    expect(defaultMaxConnections(null)).toBe(3072)
    expect(defaultMaxConnections(limits('unlimited'))).toBe(3072)
  })

  it("gives node:http the header timeout, the whole request's time, and a check often enough to hold them", () => {
    expect(serverOptions({ headerTimeoutMs: 10_000, bodyTimeoutMs: 60_000, keepAliveTimeoutMs: 65_000, maxConnections: 1 })).toEqual({
      headersTimeout: 10_000,
      requestTimeout: 70_000,
      keepAliveTimeout: 65_000,
      connectionsCheckingInterval: 1000,
    })
    expect(serverOptions({ headerTimeoutMs: 600, bodyTimeoutMs: 900, keepAliveTimeoutMs: 1200, maxConnections: 1 })).toMatchObject({ requestTimeout: 1500, connectionsCheckingInterval: 150 })
  })
})
