import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { DEFAULT_HEAP_GROWING_PERCENT, heapGrowthFlag } from '../../../src/cli/heap-growth.js'

describe('heap growth limit for serve', () => {
  it('caps growth by default, or at PROXY_HEAP_GROWING_PERCENT; 0 leaves V8 its own sizing', () => {
    expect(heapGrowthFlag([], undefined)).toBe(`--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`)
    expect(heapGrowthFlag(['--enable-source-maps'], '')).toBe(`--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`)
    expect(heapGrowthFlag([], '30')).toBe('--heap-growing-percent=30')
    expect(heapGrowthFlag([], '0')).toBeNull()
  })

  it("leaves a flag given on node's command line alone, in either spelling", () => {
    expect(heapGrowthFlag(['--heap_growing_percent=20'], '30')).toBeNull()
    expect(heapGrowthFlag(['--heap-growing-percent', '20'], undefined)).toBeNull()
    // a different flag that merely starts the same way is not a setting of this one
    expect(heapGrowthFlag(['--heap-growing-percentage=5'], undefined)).not.toBeNull()
  })

  it('refuses a setting that is not a whole number from 0 to 1000, saying what it wants', () => {
    for (const bad of ['abc', '-5', '12.5', '5000']) {
      expect(() => heapGrowthFlag([], bad)).toThrow(/PROXY_HEAP_GROWING_PERCENT must be a whole number from 0 .* to 1000, not/)
    }
  })

  it("is a flag this node's V8 knows (an unknown one is only reported on stderr)", () => {
    const flag = heapGrowthFlag([], undefined)!
    const r = spawnSync(process.execPath, ['-e', `require('node:v8').setFlagsFromString(${JSON.stringify(flag)})`], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stderr).toBe('')
    const unknown = spawnSync(process.execPath, ['-e', `require('node:v8').setFlagsFromString('--heap-growing-percentx=5')`], { encoding: 'utf8' })
    expect(unknown.stderr).toMatch(/unrecognized flag/)
  })
})
