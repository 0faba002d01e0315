/**
 * One request's trace: a SERVER span for the request (a child of the client's span when it sent a
 * traceparent), and a CLIENT span per upstream attempt beneath it, so retries and fallbacks show as
 * siblings. Attributes follow the GenAI semantic conventions, plus the proxy's own (gen-ai.ts); bodies
 * only where content capture is on for the client, scrubbed and capped as in the audit trail.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapPropagator, type Tracer } from '@opentelemetry/api'
import type { AttemptRecord } from '../../core/attempt.js'
import { clip } from '../../core/clip.js'
import type { ConfigSnapshot, ProviderConfig, RouteTarget } from '../../core/config.js'
import type { AttemptTrace } from '../../core/trace.js'
import { requestCost } from '../audit-writer.js'
import { fallbackKind } from '../metrics.js'
import type { SecretScrubber } from '../redact.js'
import type { RequestRecord } from '../request-record.js'
import { noFacts, readAnswer, readEvent, type AnswerFacts } from './answer-facts.js'
import { EVENTS, GEN_AI, operationFor, PROXY, providerName } from './gen-ai.js'
import type { RequestTrace } from './types.js'

/** What every request span of one server shares. */
export interface SpanKit {
  tracer: Tracer
  propagator: TextMapPropagator
  config: () => ConfigSnapshot
  scrubber: SecretScrubber
  /** server.address and server.port per provider, parsed once from its base URL */
  addresses: WeakMap<ProviderConfig, Attributes>
}

const setter = { set: (carrier: Record<string, string>, key: string, value: string) => void (carrier[key] = value) }

export class RequestSpan implements RequestTrace {
  readonly traceId: string
  readonly #kit: SpanKit
  readonly #span: Span
  /** the context the attempts' spans are children of */
  readonly #context: Context
  readonly #operation: string
  readonly #recording: boolean
  #facts: AnswerFacts | null = null
  #firstByte = false

  constructor(kit: SpanKit, method: string, path: string, parent: Context) {
    this.#kit = kit
    this.#operation = operationFor(path)
    this.#span = kit.tracer.startSpan(
      `${method} ${path}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path, [GEN_AI.operation]: this.#operation } },
      parent,
    )
    this.#recording = this.#span.isRecording()
    this.#context = trace.setSpan(parent, this.#span)
    this.traceId = this.#span.spanContext().traceId
  }

  event(name: string, attributes?: Attributes): void {
    if (this.#recording) this.#span.addEvent(name, attributes)
  }

  answer(value: object): void {
    if (this.#recording) readAnswer((this.#facts ??= noFacts()), value as Record<string, unknown>)
  }

  chunk(event: object): void {
    if (this.#recording) readEvent((this.#facts ??= noFacts()), event as Record<string, unknown>)
  }

  firstByte(): void {
    if (this.#firstByte) return
    this.#firstByte = true
    this.event(EVENTS.firstByte)
  }

  attempt(target: RouteTarget): AttemptTrace {
    const provider = target.provider
    const span = this.#kit.tracer.startSpan(
      `${this.#operation} ${target.upstreamModel}`,
      { kind: SpanKind.CLIENT, attributes: attemptAttributes(this.#kit.addresses, this.#operation, provider, target.upstreamModel) },
      this.#context,
    )
    const headers: Record<string, string> = {}
    this.#kit.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, setter)
    const scrubber = this.#kit.scrubber
    return {
      headers,
      end(a: AttemptRecord) {
        if (span.isRecording()) {
          if (a.key !== null) span.setAttribute(PROXY.keyLabel, a.key)
          if (a.fallback) span.setAttribute(PROXY.fallback, a.fallback)
          if (a.waitedMs) span.setAttribute(PROXY.waitMs, a.waitedMs)
          const error = a.error
          if (error) {
            // the status the proxy made of the failure (an upstream 500 is a 502 here), as the client would have seen it
            span.setAttributes({ [PROXY.errorStatus]: error.status, 'error.type': error.code ?? String(error.status) })
            if (error.reason) span.setAttribute(PROXY.failure, error.reason)
            span.setStatus({ code: SpanStatusCode.ERROR, message: scrubber.scrub(clip(error.message, 1000)) })
          }
        }
        span.end()
      },
    }
  }

  end(r: RequestRecord): void {
    const span = this.#span
    if (this.#recording) {
      const snapshot = this.#kit.config()
      if (r.model !== null) {
        const model = clip(r.model, 256)
        span.updateName(`${this.#operation} ${model}`)
        span.setAttribute(GEN_AI.requestModel, model)
      }
      span.setAttributes({ 'http.response.status_code': r.status, [PROXY.requestId]: r.requestId, [GEN_AI.requestStream]: r.stream, [PROXY.attempts]: r.attempts.length })
      if (r.client !== null) span.setAttribute(PROXY.client, r.client)
      if (r.provider !== null) {
        span.setAttributes({ [GEN_AI.provider]: providerName(snapshot.providers.get(r.provider)?.type), [PROXY.provider]: r.provider })
        if (r.upstreamModel !== null) span.setAttribute(PROXY.upstreamModel, r.upstreamModel)
        if (r.key !== null) span.setAttribute(PROXY.keyLabel, r.key)
      }
      const fallback = fallbackKind(r)
      if (fallback !== null) span.setAttribute(PROXY.fallback, fallback)
      const facts = this.#facts
      if (facts) {
        if (facts.model !== null) span.setAttribute(GEN_AI.responseModel, clip(facts.model, 256))
        if (facts.id !== null) span.setAttribute(GEN_AI.responseId, clip(facts.id, 256))
        const reasons = facts.finishReasons.filter((f) => typeof f === 'string')
        if (reasons.length > 0) span.setAttribute(GEN_AI.finishReasons, reasons)
      }
      if (r.usage) {
        span.setAttributes({ [GEN_AI.inputTokens]: r.usage.prompt_tokens, [GEN_AI.outputTokens]: r.usage.completion_tokens })
        if (r.usageEstimated) span.setAttribute(PROXY.usageEstimated, true)
        const cost = requestCost(r, snapshot)
        if (cost !== null) span.setAttribute(PROXY.costUsd, cost)
      }
      if (r.capture) {
        const request = r.capture.requestText(this.#kit.scrubber)
        const response = r.capture.responseText(this.#kit.scrubber)
        if (request !== null) span.setAttribute(PROXY.requestBody, request)
        if (response !== null) span.setAttribute(PROXY.responseBody, response)
      }
      if (r.error) {
        span.setAttribute('error.type', r.error.code ?? r.error.type)
        // a server span's status is an error for the server's failures only: 4xx are the client's (HTTP conventions)
        if (r.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: this.#kit.scrubber.scrub(clip(r.error.message, 1000)) })
      }
    }
    span.end()
  }
}

/** The attributes an attempt's span starts with. */
function attemptAttributes(addresses: WeakMap<ProviderConfig, Attributes>, operation: string, provider: ProviderConfig, upstreamModel: string): Attributes {
  let address = addresses.get(provider)
  if (!address) {
    address = {}
    try {
      if (provider.baseUrl) {
        const url = new URL(provider.baseUrl)
        address = { 'server.address': url.hostname, 'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80) }
      }
    } catch {
      // a base URL that does not parse has no address to show
    }
    addresses.set(provider, address)
  }
  return { [GEN_AI.operation]: operation, [GEN_AI.provider]: providerName(provider.type), [GEN_AI.requestModel]: upstreamModel, [PROXY.provider]: provider.name, ...address }
}
