/**
 * OpenAI's Responses API (POST /v1/responses) on the shared lifecycle. An OpenAI or Azure target is
 * called natively: the body goes through untouched but for the model. Any other target gets the request
 * translated to chat completions and the answer translated back (request.ts, response.ts, stream.ts).
 *
 * previous_response_id: a response made natively is continued natively, on the provider and key that
 * made it (the upstream keeps its items); one made by translation is continued from the items this
 * proxy stored, and may then go to any target (a native one gets the whole history as input).
 * item_reference entries naming items this proxy made are resolved from the client's stored responses
 * (references.ts); a native upstream gets the items themselves.
 */
import { ProxyError } from '../../core/errors.js'
import { revised } from '../../core/request-bytes.js'
import { itemType, parseResponsesRequest, type InputItem, type ResponsesRequest } from '../../core/responses-schema.js'
import type { Usage } from '../../core/openai-schema.js'
import type { Caller, Gateway, Served } from '../../gateway/gateway.js'
import { primeStream } from '../../gateway/streams.js'
import type { CountFn } from '../../limits/estimate.js'
import type { NativeEvent } from '../../providers/types.js'
import type { ResponseBook } from '../../store/response-book.js'
import type { StoredResponse } from '../../store/repos/responses.js'
import { usageRecord, type Endpoint, type RecordUsage, type StreamMeter } from '../lifecycle.js'
import { StreamedText } from '../streamed-text.js'
import { namedEvent } from '../sse-format.js'
import { responseFailedEvent } from './errors.js'
import { responsesShape } from './shape.js'
import { newItemId, newResponseId } from './output.js'
import { findReferencedItems, withReferencesResolved } from './references.js'
import { toChatRequest } from './request.js'
import { toResponse } from './response.js'
import { newResponseStream, toResponseEvents, type ResponseStreamState } from './stream.js'
import { withoutProxyReasoning } from './thinking-codec.js'
import { usageOfEvent, usageOfResponse } from './usage.js'

export interface ResponsesDeps {
  gateway: Gateway
  book: ResponseBook
  /** how long a stored response is kept */
  retentionMs: number
}


/**
 * The request's input as a list of items (a string is one user message), each with its type, an id (of
 * `responseId`, when given) and the references `referenced` resolves replaced by their items, as stored.
 */
function inputItems(req: ResponsesRequest, referenced: ReadonlyMap<string, InputItem>, responseId?: string): InputItem[] {
  const input = typeof req.input === 'string' ? [{ type: 'message', role: 'user', content: req.input } as InputItem] : withReferencesResolved(req.input ?? [], referenced)
  return input.map((item) => {
    const it = item as Record<string, unknown>
    if (typeof it.id === 'string' && typeof it.type === 'string') return item
    const type = itemType(it)
    return { id: newItemId(type === 'message' ? 'msg' : 'call', responseId), type, ...it } as InputItem
  })
}

/** Token estimate for limits: the text of the instructions and the input items, plus the output cap. */
export function estimateResponsesTokens(req: ResponsesRequest, count: CountFn, withOutput = true): number {
  let n = 3
  if (typeof req.instructions === 'string') n += count(req.instructions)
  const pieces: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string') pieces.push(v)
    else if (Array.isArray(v)) for (const x of v) walk(x)
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>
      for (const key of ['text', 'content', 'arguments', 'output', 'input', 'summary']) if (key in o) walk(o[key])
    }
  }
  walk(req.input)
  for (const p of pieces) n += 3 + count(p)
  return n + (withOutput && typeof req.max_output_tokens === 'number' ? req.max_output_tokens : 0)
}

/** What one request needs from the responses it continues or names. */
interface Continuation {
  /** made natively: continue on that provider and key */
  native: StoredResponse | null
  /** made by translation: the earlier turns' items, oldest first */
  history: InputItem[] | null
  /** the items the input's item_reference entries name, where this proxy has them */
  referenced: ReadonlyMap<string, InputItem>
}

async function continuation(deps: ResponsesDeps, req: ResponsesRequest, caller: Caller): Promise<Continuation> {
  const previous = await previousTurns(deps, req, caller)
  return { ...previous, referenced: await findReferencedItems(deps.book, req.input, caller.client.id, previous.history ?? []) }
}

async function previousTurns(deps: ResponsesDeps, req: ResponsesRequest, caller: Caller): Promise<Omit<Continuation, 'referenced'>> {
  const id = req.previous_response_id
  if (typeof id !== 'string' || !id) return { native: null, history: null }
  const chain = await deps.book.chain(id, caller.client.id)
  if (!chain) throw previousNotFound(id)
  const last = chain.at(-1)!
  if (last.native) {
    caller.pin = { provider: last.provider, key: last.keyLabel }
    return { native: last, history: null }
  }
  const history: InputItem[] = []
  for (const turn of chain) {
    if (turn.native) continue
    history.push(...((turn.input ?? []) as InputItem[]), ...(((turn.response?.output as InputItem[] | undefined) ?? [])))
  }
  return { native: null, history }
}

const previousNotFound = (id: string) =>
  new ProxyError({ status: 404, type: 'invalid_request_error', code: 'previous_response_not_found', param: 'previous_response_id', message: `Previous response with id '${id.slice(0, 100)}' not found.` })

/** The request for a provider that does not speak the Responses API. */
const translate = (req: ResponsesRequest, c: Continuation) => toChatRequest(req, { history: c.history ?? undefined, resolveItem: (id) => c.referenced.get(id) })

/**
 * The body a native upstream gets: the client's own, with the items it references from us in, our
 * reasoning items out and, after a translated turn, the history in.
 */
function nativeBody(req: ResponsesRequest, c: Continuation): Record<string, unknown> {
  if (c.history) {
    const { previous_response_id: _, ...rest } = req as ResponsesRequest & Record<string, unknown>
    return { ...rest, input: withoutProxyReasoning([...c.history, ...inputItems(req, c.referenced)]) }
  }
  if (Array.isArray(req.input)) return revised(req, { input: withoutProxyReasoning(withReferencesResolved(req.input, c.referenced)) })
  return req
}

/** A stream's usage, the text it carried, and its Response as it grows (for response.failed and storing). */
class ResponsesMeter implements StreamMeter<NativeEvent> {
  #usage: Usage | null = null
  readonly #text = new StreamedText()
  /** the latest Response an event carried (native streams) */
  response: Record<string, unknown> | null = null
  lastSequence = -1

  /** `translated`: the state of a translated stream, when the serving attempt made one */
  constructor(readonly translated: () => ResponseStreamState | null) {}

  see(event: NativeEvent): boolean {
    if (typeof event.sequence_number === 'number') this.lastSequence = event.sequence_number
    const t = event.type
    if (t === 'response.output_text.delta' || t === 'response.function_call_arguments.delta' || t === 'response.reasoning_summary_text.delta' || t === 'response.refusal.delta') {
      if (typeof event.delta === 'string') this.#text.keep(event.delta)
    } else if (event.response && typeof event.response === 'object') {
      this.response = event.response as Record<string, unknown>
      this.#usage = usageOfEvent(event as { type: string; response?: unknown }) ?? this.#usage
    }
    return true
  }

  usage(): RecordUsage | null {
    return usageRecord(this.#usage)
  }

  streamed(count: CountFn): number {
    return this.#text.tokens(count)
  }

  /** The last event of a stream that failed after its first byte: response.failed with what was written. */
  failure(error: ProxyError): string {
    const state = this.translated()
    if (state) return namedEvent(responseFailedEvent(error, state))
    const response = { ...(this.response ?? { object: 'response' }), status: 'failed', error: { code: error.status === 429 ? 'rate_limit_exceeded' : 'server_error', message: error.message } }
    return namedEvent({ type: 'response.failed', sequence_number: this.lastSequence + 1, response })
  }
}

export function responsesEndpoint(deps: ResponsesDeps): Endpoint {
  const { gateway } = deps
  /** Keeps what a continuation needs, unless the client said store: false. */
  const keep = (req: ResponsesRequest, caller: Caller, served: Served<unknown>, response: Record<string, unknown> | null, native: boolean) => {
    if (req.store === false || !response || typeof response.id !== 'string') return
    const now = Date.now()
    deps.book.remember({
      id: response.id,
      clientId: caller.client.id,
      provider: served.provider,
      keyLabel: served.key,
      native,
      model: req.model,
      previousId: typeof req.previous_response_id === 'string' ? req.previous_response_id : null,
      input: native ? null : inputItems(req, continuations.get(req)?.referenced ?? new Map(), response.id),
      response: native ? null : response,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + deps.retentionMs).toISOString(),
    })
  }
  const nativeAnswer = new WeakSet<object>()
  /** what each request continues or names, for storing its input */
  const continuations = new WeakMap<ResponsesRequest, Continuation>()
  const begin = async (r: ResponsesRequest, caller: Caller) => {
    const c = await continuation(deps, r, caller)
    continuations.set(r, c)
    return c
  }
  /** a translated stream's state, per request: the Response it builds (for response.failed and storing) */
  const streamStates = new WeakMap<ResponsesRequest, ResponseStreamState>()

  const endpoint: Endpoint<ResponsesRequest, Record<string, unknown>, NativeEvent> = {
    shape: responsesShape,
    parse: parseResponsesRequest,
    model: (r) => r.model,
    streams: (r) => r.stream === true,
    tokens: (r, count) => estimateResponsesTokens(r, count),
    prompt: (r, count) => estimateResponsesTokens(r, count, false),
    maxOutput: (r) => (typeof r.max_output_tokens === 'number' ? r.max_output_tokens : null),
    async call(r, caller) {
      const c = await begin(r, caller)
      let translated: ReturnType<typeof toChatRequest> | null = null
      return gateway.run(caller, {
        model: r.model,
        what: 'responses',
        supports: c.native ? (a) => !!a.responses : undefined,
        call: async (a, ctx) => {
          if (a.responses) {
            const answer = await a.responses(nativeBody(r, c), ctx)
            nativeAnswer.add(answer)
            return answer
          }
          translated ??= translate(r, c)
          for (const p of translated.dropped) ctx.warn?.(p)
          const completion = await a.chat(translated.chat, ctx)
          return toResponse(completion, r, { id: newResponseId() }) as unknown as Record<string, unknown>
        },
      })
    },
    async callStream(r, caller) {
      const c = await begin(r, caller)
      let translated: ReturnType<typeof toChatRequest> | null = null
      return gateway.run<AsyncIterable<NativeEvent>>(caller, {
        model: r.model,
        what: 'responses',
        stream: true,
        supports: c.native ? (a) => !!a.responsesStream : undefined,
        call: (a, ctx) => {
          if (a.responsesStream) return a.responsesStream(nativeBody(r, c), ctx).then(primeStream)
          translated ??= translate(r, c)
          for (const p of translated.dropped) ctx.warn?.(p)
          const state = newResponseStream(r, { id: newResponseId() })
          // the attempt that serves is the last to set it
          streamStates.set(r, state)
          // primed on the chat chunks, so a failure before the first of them still falls back
          return a
            .chatStream({ ...translated.chat, stream: true }, ctx)
            .then(primeStream)
            .then((chunks) => toResponseEvents(chunks, state) as AsyncIterable<NativeEvent>)
        },
      })
    },
    usage: (answer) => usageRecord(usageOfResponse(answer)),
    meter: (r) => new ResponsesMeter(() => streamStates.get(r) ?? null),
    completed(r, caller, served, answer, meter) {
      if (answer) return keep(r, caller, served, answer, nativeAnswer.has(answer))
      const m = meter as ResponsesMeter | null
      if (!m) return
      const state = streamStates.get(r)
      keep(r, caller, served, state ? (state.response as unknown as Record<string, unknown>) : m.response, !state)
    },
  }
  return endpoint as Endpoint
}

