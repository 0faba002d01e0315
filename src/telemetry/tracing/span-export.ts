/**
 * Export of finished spans: batched (the SDK's BatchSpanProcessor) and bounded. Spans handed over and not
 * yet exported are counted; past `maxQueueSize` a span is dropped at once and counted, so a collector that
 * is down or slow costs a counter, never memory, and the request that ended the span never waits.
 */
import { TraceFlags, type Context } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { Counter, type Registry } from '../prom.js'
import type { Logger } from '../logger.js'
import { onceAMinute } from '../once-a-minute.js'

export interface ExportLimits {
  maxQueueSize: number
  maxExportBatchSize: number
  scheduleDelayMs: number
  exportTimeoutMs: number
}

export interface ExportCounters {
  exported(spans: number): void
  dropped(reason: 'queue_full' | 'export_failed', spans: number): void
}

/** proxy_trace_spans_exported_total and proxy_trace_spans_dropped_total{reason}, on the server's registry. */
export function exportCounters(registry: Registry, prefix = 'proxy_'): ExportCounters {
  const registers = [registry]
  const exported = new Counter({ name: `${prefix}trace_spans_exported_total`, help: 'Spans the OTLP collector accepted.', registers })
  const dropped = new Counter({
    name: `${prefix}trace_spans_dropped_total`,
    help: 'Spans never delivered: queue_full (the export queue was full: the collector is down or slow), export_failed (the collector refused them or could not be reached).',
    labelNames: ['reason'] as const,
    registers,
  })
  dropped.inc({ reason: 'queue_full' }, 0)
  dropped.inc({ reason: 'export_failed' }, 0)
  return { exported: (n) => exported.inc(n), dropped: (reason, n) => dropped.inc({ reason }, n) }
}

export class BoundedSpanExport implements SpanProcessor {
  readonly #batch: BatchSpanProcessor
  readonly #max: number
  readonly #counters: ExportCounters
  /** handed to the batch processor and not yet answered for by the exporter */
  #pending = 0

  constructor(exporter: SpanExporter, limits: ExportLimits, counters: ExportCounters, logger: Logger) {
    this.#max = limits.maxQueueSize
    this.#counters = counters
    const warn = onceAMinute()
    const counted: SpanExporter = {
      export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
        exporter.export(spans, (result) => {
          this.#pending -= spans.length
          if (result.code === ExportResultCode.SUCCESS) counters.exported(spans.length)
          else {
            counters.dropped('export_failed', spans.length)
            if (warn()) logger.warn({ event: 'traces', err: result.error?.message ?? 'unknown', spans: spans.length }, 'trace export failed; the spans are dropped (see proxy_trace_spans_dropped_total)')
          }
          done(result)
        })
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    }
    this.#batch = new BatchSpanProcessor(counted, {
      maxQueueSize: limits.maxQueueSize,
      maxExportBatchSize: limits.maxExportBatchSize,
      scheduledDelayMillis: limits.scheduleDelayMs,
      // a little longer than the exporter's own timeout, so the exporter always answers first
      exportTimeoutMillis: limits.exportTimeoutMs + 1000,
    })
  }

  onStart(_span: Span, _parent: Context): void {}

  onEnd(span: ReadableSpan): void {
    // the batch processor leaves unsampled spans out itself; they are not pending
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return
    if (this.#pending >= this.#max) {
      this.#counters.dropped('queue_full', 1)
      return
    }
    this.#pending++
    this.#batch.onEnd(span)
  }

  forceFlush(): Promise<void> {
    return this.#batch.forceFlush()
  }

  shutdown(): Promise<void> {
    return this.#batch.shutdown()
  }
}
