/**
 * The one error type of the proxy. Everything that can reach a client is a ProxyError; the server's
 * onError hook is the only place that renders it as OpenAI's `{error:{message,type,param,code}}`.
 * `retryable` lets the gateway decide on retries and fallbacks without string matching.
 *
 * A client's strings (model names, paths) are echoed clipped (core/clip.ts): by the constructors below
 * that take them, and past MAX_MESSAGE_CHARS by ProxyError itself, whatever built the message.
 */
import { clip } from './clip.js'

const MAX_MESSAGE_CHARS = 2000

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error'
  | 'service_unavailable'

export interface ProxyErrorInit {
  status: number
  type: OpenAIErrorType
  code: string | null
  message: string
  param?: string | null
  retryable?: boolean
  headers?: Record<string, string>
  cause?: unknown
}

export class ProxyError extends Error {
  readonly status: number
  readonly type: OpenAIErrorType
  readonly code: string | null
  readonly param: string | null
  readonly retryable: boolean
  readonly headers: Record<string, string>

  constructor(init: ProxyErrorInit) {
    super(clip(init.message, MAX_MESSAGE_CHARS), init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'ProxyError'
    this.status = init.status
    this.type = init.type
    this.code = init.code
    this.param = init.param ?? null
    this.retryable = init.retryable ?? false
    this.headers = init.headers ?? {}
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ProxyError({ status: 400, type: 'invalid_request_error', code, message, param })

export const invalidApiKey = (message: string) =>
  new ProxyError({ status: 401, type: 'authentication_error', code: 'invalid_api_key', message })

export const permissionDenied = (message: string, code = 'model_not_allowed') =>
  new ProxyError({ status: 403, type: 'permission_error', code, message })

export const modelNotFound = (model: string, hint = '') =>
  new ProxyError({
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
    param: 'model',
    message: `The model '${clip(model)}' does not exist or is not routed by this proxy.${hint ? ' ' + hint : ''}`,
  })

export const modelNotAllowed = (client: string, model: string) =>
  permissionDenied(`Client '${client}' is not allowed to use model '${clip(model)}'. An admin can allow it with 'proxy clients set ${client} --models …' (or --models all).`)

export const notFound = (message: string) =>
  new ProxyError({ status: 404, type: 'invalid_request_error', code: 'not_found', message })

/** A path nothing is served at; `hint` says what is. */
export const pathNotFound = (path: string, hint: string) => notFound(`Unknown path ${clip(path)}. ${hint}`)

export const methodNotAllowed = (method: string, path: string, allowed: string[]) =>
  new ProxyError({
    status: 405,
    type: 'invalid_request_error',
    code: 'method_not_allowed',
    message: `${clip(method)} is not allowed on ${clip(path)}; use ${allowed.join(' or ')}.`,
    headers: { allow: allowed.join(', ') },
  })

export const bodyTooLarge = (limitBytes: number) =>
  new ProxyError({
    status: 413,
    type: 'invalid_request_error',
    code: 'request_too_large',
    message: `The request body is larger than this proxy accepts (${limitBytes} bytes). Raise PROXY_MAX_BODY_BYTES or --max-body to allow it.`,
  })

export const jsonTooDeep = (limit: number) =>
  new ProxyError({
    status: 400,
    type: 'invalid_request_error',
    code: 'json_too_deep',
    message: `The request body nests arrays and objects more than ${limit} levels deep, which this proxy does not accept. Raise PROXY_MAX_JSON_DEPTH or --max-json-depth to allow it.`,
  })

/** The proxy's own failure; `cause` (what was thrown) goes to the request's log line, never to the client. */
export const internalError = (requestId: string, cause?: unknown) =>
  new ProxyError({
    status: 500,
    type: 'server_error',
    code: 'internal_error',
    message: `The proxy failed to handle this request (request id ${requestId}). The server log has the details.`,
    cause,
  })

export function isProxyError(err: unknown): err is ProxyError {
  return err instanceof ProxyError
}

export const conflict = (message: string, code = 'conflict') =>
  new ProxyError({ status: 409, type: 'invalid_request_error', code, message })
