import { describe, expect, it } from 'vitest'
import { resolveTraceSettings } from '../../src/telemetry/tracing/settings.js'

describe('trace settings from --otlp-endpoint and the OTEL_* variables', () => {
  it('are off without an endpoint, and when the SDK or the exporter is turned off', () => {
    expect(resolveTraceSettings(undefined, {})).toBeNull()
    expect(resolveTraceSettings(undefined, { OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeNull()
    expect(resolveTraceSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeNull()
    expect(resolveTraceSettings('http://c:4318', { OTEL_TRACES_EXPORTER: 'none' })).toBeNull()
  })

  it('append v1/traces to a base endpoint and take a traces endpoint as it is; the flag wins', () => {
    expect(resolveTraceSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })!.url).toBe('http://collector:4318/v1/traces')
    expect(resolveTraceSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example/base/' })!.url).toBe('https://otel.example/base/v1/traces')
    expect(resolveTraceSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/custom' })!.url).toBe('http://b:9999/custom')
    expect(resolveTraceSettings('http://flag:4318', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/custom' })!.url).toBe('http://flag:4318/v1/traces')
    expect(resolveTraceSettings('http://flag:4318/v1/traces', {})!.url).toBe('http://flag:4318/v1/traces')
  })

  it('read the service name, headers, sampler and the batch limits, with the defaults of the specification', () => {
    const defaults = resolveTraceSettings('http://c:4318', {})!
    expect(defaults).toMatchObject({ serviceName: 'proxy', headers: null, sampler: 'parentbased_always_on', ratio: 1, maxQueueSize: 2048, maxExportBatchSize: 512 })
    const set = resolveTraceSettings('http://c:4318', {
      OTEL_SERVICE_NAME: 'edge-proxy',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=a',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'authorization=Bearer%20t',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
    })!
    expect(set).toMatchObject({ serviceName: 'edge-proxy', headers: 'authorization=Bearer%20t', sampler: 'parentbased_traceidratio', ratio: 0.25, maxQueueSize: 100, maxExportBatchSize: 100, exportTimeoutMs: 2500 })
  })

  it('refuse what they cannot honour, saying what to set instead', () => {
    expect(() => resolveTraceSettings('ftp://c', {})).toThrow(/--otlp-endpoint must be an http\(s\) URL/)
    expect(() => resolveTraceSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/)
    expect(() => resolveTraceSettings('http://c:4317', { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/HTTP port \(4318/)
    expect(() => resolveTraceSettings('http://c:4318', { OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER must be one of/)
    expect(() => resolveTraceSettings('http://c:4318', { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/ratio from 0 to 1/)
    expect(() => resolveTraceSettings('http://c:4318', { OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTLP only/)
    expect(() => resolveTraceSettings('http://c:4318', { OTEL_BSP_MAX_QUEUE_SIZE: '0' })).toThrow(/OTEL_BSP_MAX_QUEUE_SIZE/)
  })
})
