/**
 * src/telemetry/prom.ts takes prom-client's classes from their own modules, not the package's index
 * (see there why). This fails when a release of prom-client moves one or makes it another.
 */
import * as fromIndex from 'prom-client'
import { describe, expect, it } from 'vitest'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from '../../../src/telemetry/prom.js'

describe("prom-client's classes from their own modules", () => {
  it('are the very ones the package exports', () => {
    expect(Registry).toBe(fromIndex.Registry)
    expect(Counter).toBe(fromIndex.Counter)
    expect(Gauge).toBe(fromIndex.Gauge)
    expect(Histogram).toBe(fromIndex.Histogram)
    expect(collectDefaultMetrics).toBe(fromIndex.collectDefaultMetrics)
  })

  it('register and expose metrics as the index\'s do', async () => {
    const registry = new Registry()
    new Counter({ name: 'things_total', help: 'things', registers: [registry] }).inc(2)
    collectDefaultMetrics({ register: registry })
    const text = await registry.metrics()
    expect(text).toContain('things_total 2')
    expect(text).toContain('process_cpu_seconds_total')
  })
})
