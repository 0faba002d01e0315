/**
 * A fake OpenTelemetry collector on loopback: it accepts OTLP/HTTP trace exports (the JSON encoding that
 * @opentelemetry/exporter-trace-otlp-http sends) at /v1/traces and keeps every span, flattened: ids as
 * hex, attributes as a plain object, events by name, kind as the SDK's word.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface CollectedSpan {
  traceId: string
  spanId: string
  parentSpanId: string | null
  name: string
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer' | 'unspecified'
  attributes: Record<string, unknown>
  events: Array<{ name: string; attributes: Record<string, unknown> }>
  status: { code: 'unset' | 'ok' | 'error'; message?: string }
  startNs: bigint
  endNs: bigint
  resource: Record<string, unknown>
}

export interface OtlpCollector {
  /** the base endpoint, for OTEL_EXPORTER_OTLP_ENDPOINT */
  url: string
  spans: CollectedSpan[]
  /** the raw bodies received, as parsed JSON */
  exports: unknown[]
  /** request headers of each export */
  headers: IncomingHttpHeaders[]
  trace(traceId: string): CollectedSpan[]
  close(): Promise<void>
}

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const
const STATUS = ['unset', 'ok', 'error'] as const

type AnyValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: AnyValue[] } }
type KeyValue = { key: string; value: AnyValue }

function value(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.doubleValue !== undefined) return v.doubleValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(value)
  return null
}

const attributes = (list: KeyValue[] | undefined) => Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]))

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: CollectedSpan[] = []
  const exports: unknown[] = []
  const headers: IncomingHttpHeaders[] = []
  const server: Server = createServer(async (req, res) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end()
      return
    }
    if (!String(req.headers['content-type']).startsWith('application/json')) {
      res.writeHead(415).end()
      return
    }
    const body = JSON.parse(raw)
    exports.push(body)
    headers.push(req.headers)
    for (const rs of body.resourceSpans ?? []) {
      const resource = attributes(rs.resource?.attributes)
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId || null,
            name: s.name,
            kind: KINDS[s.kind ?? 0] ?? 'unspecified',
            attributes: attributes(s.attributes),
            events: (s.events ?? []).map((e: { name: string; attributes?: KeyValue[] }) => ({ name: e.name, attributes: attributes(e.attributes) })),
            status: { code: STATUS[s.status?.code ?? 0] ?? 'unset', ...(s.status?.message ? { message: s.status.message } : {}) },
            startNs: BigInt(s.startTimeUnixNano),
            endNs: BigInt(s.endTimeUnixNano),
            resource,
          })
        }
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    exports,
    headers,
    trace: (traceId) => spans.filter((s) => s.traceId === traceId),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
