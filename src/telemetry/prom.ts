/**
 * prom-client's classes, imported from their own modules rather than the package's index. The index also
 * loads the Pushgateway (node's https and zlib), cluster aggregation (cluster, dgram) and Summary, none
 * of which the proxy uses, and node compiles each of those modules at every `proxy serve` start.
 * prom-client is pinned; test/unit/telemetry/prom.test.ts fails when a release moves one of these or
 * makes it another.
 */
import type * as Prom from 'prom-client'
import CounterClass from 'prom-client/lib/counter.js'
import collect from 'prom-client/lib/defaultMetrics.js'
import GaugeClass from 'prom-client/lib/gauge.js'
import HistogramClass from 'prom-client/lib/histogram.js'
import RegistryClass from 'prom-client/lib/registry.js'

export const Registry: typeof Prom.Registry = RegistryClass
export type Registry = Prom.Registry
export const Counter: typeof Prom.Counter = CounterClass
export type Counter<T extends string = string> = Prom.Counter<T>
export const Gauge: typeof Prom.Gauge = GaugeClass
export type Gauge<T extends string = string> = Prom.Gauge<T>
export const Histogram: typeof Prom.Histogram = HistogramClass
export type Histogram<T extends string = string> = Prom.Histogram<T>
export const collectDefaultMetrics: typeof Prom.collectDefaultMetrics = collect
