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

export const Registry = RegistryClass as typeof Prom.Registry
export type Registry = Prom.Registry
export const Counter = CounterClass as typeof Prom.Counter
export type Counter<T extends string = string> = Prom.Counter<T>
export const Gauge = GaugeClass as typeof Prom.Gauge
export type Gauge<T extends string = string> = Prom.Gauge<T>
export const Histogram = HistogramClass as typeof Prom.Histogram
export type Histogram<T extends string = string> = Prom.Histogram<T>
export const collectDefaultMetrics = collect as typeof Prom.collectDefaultMetrics
