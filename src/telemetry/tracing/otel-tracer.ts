/**
 * The OpenTelemetry side of traces, loaded by start.ts only when traces are on: a tracer provider of its
 * own (nothing is registered globally), OTLP/HTTP export in bounded batches, W3C trace context in and out.
 */
import { ROOT_CONTEXT, type Attributes, type TextMapGetter } from '@opentelemetry/api'
import { parseKeyPairsIntoRecord, W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler } from '@opentelemetry/sdk-trace-base'
import type { IncomingHttpHeaders } from 'node:http'
import type { Registry } from 'prom-client'
import type { ConfigSnapshot, ProviderConfig } from '../../core/config.js'
import type { Logger } from '../logger.js'
import type { SecretScrubber } from '../redact.js'
import { RequestSpan, type SpanKit } from './request-span.js'
import type { TraceSettings } from './settings.js'
import { BoundedSpanExport, exportCounters } from './span-export.js'
import type { RequestTracer } from './types.js'

export interface OtelTracerDeps {
  settings: TraceSettings
  config: () => ConfigSnapshot
  scrubber: SecretScrubber
  registry: Registry
  logger: Logger
  /** the proxy's version, for service.version */
  version?: string
}

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
}

export function createOtelTracer(deps: OtelTracerDeps): RequestTracer {
  const { settings } = deps
  const exporter = new OTLPTraceExporter({
    url: settings.url,
    headers: settings.headers ? parseKeyPairsIntoRecord(settings.headers) : {},
    timeoutMillis: settings.exportTimeoutMs,
  })
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName, ...(deps.version ? { 'service.version': deps.version } : {}) }),
    sampler: samplerFor(settings),
    spanProcessors: [
      new BoundedSpanExport(
        exporter,
        { maxQueueSize: settings.maxQueueSize, maxExportBatchSize: settings.maxExportBatchSize, scheduleDelayMs: settings.scheduleDelayMs, exportTimeoutMs: settings.exportTimeoutMs },
        exportCounters(deps.registry),
        deps.logger,
      ),
    ],
  })
  const propagator = new W3CTraceContextPropagator()
  const kit: SpanKit = {
    tracer: provider.getTracer('proxy', deps.version),
    propagator,
    config: deps.config,
    scrubber: deps.scrubber,
    addresses: new WeakMap<ProviderConfig, Attributes>(),
  }
  let closing: Promise<void> | null = null
  return {
    start(method, path, headers) {
      // the client's traceparent (and tracestate), when it sent a valid one; else a new trace
      const parent = headers.traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, headers, headerGetter)
      return new RequestSpan(kit, method, path, parent)
    },
    shutdown() {
      // The last batches go out within the export timeout; a collector that is down does not hold the exit longer.
      closing ??= Promise.race([
        provider.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, settings.exportTimeoutMs + 1000).unref()),
      ])
      return closing
    },
  }
}

function samplerFor(settings: TraceSettings): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.ratio)
  switch (settings.sampler) {
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'traceidratio':
      return ratio
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio })
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
  }
}
