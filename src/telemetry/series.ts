/**
 * Counters and histograms for the per-request metrics, recorded as plain number updates on a series
 * object the caller keeps, because prom-client's own classes hash the labels object on every inc() and
 * observe() (docs/performance.md). These register in a prom-client Registry like its own metrics do
 * (name, help, type, get()), so exposition, default metrics and the registry stay prom-client's.
 */
import type { Metric, Registry } from 'prom-client'

interface MetricValue {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

abstract class SeriesMetric<L extends string, S> {
  readonly name: string
  readonly help: string
  abstract readonly type: 'counter' | 'histogram'
  readonly aggregator = 'sum'
  readonly labelNames: readonly L[]
  protected series = new Map<string, { labels: Record<L, string>; s: S }>()

  constructor(opts: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    this.name = opts.name
    this.help = opts.help
    this.labelNames = opts.labelNames
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric)
  }

  /** The series for these label values; keep it and record on it (label values must be bounded). */
  labels(labels: Record<L, string>): S {
    let id = ''
    for (const n of this.labelNames) id += labels[n] + '\u0000'
    let entry = this.series.get(id)
    if (!entry) this.series.set(id, (entry = { labels: { ...labels }, s: this.create() }))
    return entry.s
  }

  reset(): void {
    this.series.clear()
  }

  protected abstract create(): S
  abstract get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }>
}

export interface CounterSeries {
  value: number
}

export class SeriesCounter<L extends string> extends SeriesMetric<L, CounterSeries> {
  readonly type = 'counter' as const

  protected create(): CounterSeries {
    return { value: 0 }
  }

  async get() {
    const values: MetricValue[] = []
    for (const { labels, s } of this.series.values()) values.push({ value: s.value, labels })
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}

export class HistogramSeries {
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length)
  }

  observe(value: number): void {
    const b = this.bounds
    let i = 0
    while (i < b.length && value > b[i]!) i++
    if (i < b.length) this.counts[i]!++
    this.sum += value
    this.count++
  }
}

export class SeriesHistogram<L extends string> extends SeriesMetric<L, HistogramSeries> {
  readonly type = 'histogram' as const
  readonly buckets: readonly number[]

  constructor(opts: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[]; registers: Registry[] }) {
    super(opts)
    this.buckets = [...opts.buckets].sort((a, b) => a - b)
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets)
  }

  async get() {
    const values: MetricValue[] = []
    for (const { labels, s } of this.series.values()) {
      let cumulative = 0
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.counts[i]!
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: this.buckets[i]! }, value: cumulative })
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count })
      values.push({ metricName: `${this.name}_sum`, labels, value: s.sum })
      values.push({ metricName: `${this.name}_count`, labels, value: s.count })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}
