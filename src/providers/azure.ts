/**
 * Azure OpenAI (`--type azure`): OpenAI's wire format at Azure's addresses. The route target's upstream
 * model is the deployment name, the key travels in an `api-key` header, and every URL carries api-version:
 *   {base}/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21
 * Bodies are OpenAI's (the OpenAI adapter does the work, `model` is sent as the deployment, as the openai
 * SDK's AzureOpenAI client does); Azure-only response fields (prompt_filter_results,
 * content_filter_results) pass through untouched.
 *
 * The Responses API is not under a deployment: the deployment goes in the body's `model`, as with OpenAI.
 * By default the v1 API is called, {base}/openai/v1/responses (no api-version: v1 is Azure's current
 * surface, and the one its Responses features ship on); settings.responses_api_version = 'preview' calls
 * {base}/openai/v1/responses?api-version=preview, and a dated version (e.g. 2025-04-01-preview) the older
 * form {base}/openai/responses?api-version=2025-04-01-preview. Retrieve, delete and input_items add
 * /{id} and /{id}/input_items to the same address.
 *
 * settings: api_version (default 2024-10-21), responses_api_version (default v1), stream_usage (default:
 * on from api-version 2024-08-01, which is when Azure started accepting stream_options), headers.NAME=value.
 */
import { ProxyError } from '../core/errors.js'
import { forgetRawJson } from '../core/raw-json.js'
import type { ChatCompletionChunk, Completion } from '../core/openai-schema.js'
import { createOpenAIAdapter, type OpenAIDialect, type OpenAIPath } from './openai.js'
import { answerFault } from './shared/upstream-error.js'
import type { AdapterDeps, ProviderAdapter, ProviderEndpoint } from './types.js'

export const AZURE_DEFAULT_API_VERSION = '2024-10-21'
/** The first api-version that accepts `stream_options` (older ones answer "Unrecognized request argument"). */
const FIRST_STREAM_USAGE_VERSION = '2024-08-01'

export function azureApiVersion(settings: Record<string, unknown>): string {
  const v = settings.api_version
  return typeof v === 'string' && v.trim() ? v.trim() : typeof v === 'number' ? String(v) : AZURE_DEFAULT_API_VERSION
}

/** `https://res.openai.azure.com`, with or without a trailing slash, `/openai` or `/openai/v1`, as the resource root. */
export function azureResourceRoot(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/i, '')
}

/** Where the Responses API lives for a responses_api_version setting (see the header comment). */
export function azureResponsesPath(version: unknown): string {
  const v = typeof version === 'string' ? version.trim() : ''
  if (!v || v === 'v1') return 'openai/v1/responses'
  if (v === 'preview') return 'openai/v1/responses?api-version=preview'
  return `openai/responses?api-version=${encodeURIComponent(v)}`
}

export function azureDialect(provider: string, baseUrl: string | null, apiVersion: string, responsesVersion?: string): OpenAIDialect {
  const query = `api-version=${encodeURIComponent(apiVersion)}`
  const root = baseUrl ? azureResourceRoot(baseUrl) : null
  const responsesPath = azureResponsesPath(responsesVersion)
  return {
    url(path: OpenAIPath, ctx) {
      if (!root) {
        throw new ProxyError({
          status: 500,
          type: 'server_error',
          code: 'provider_misconfigured',
          message: `Provider '${provider}' (azure) has no base URL. Re-add it with --base-url https://RESOURCE.openai.azure.com.`,
        })
      }
      // Listing models and Responses are per resource; everything else is per deployment.
      if (path === 'models') return `${root}/openai/models?${query}`
      if (path === 'responses') return `${root}/${responsesPath}`
      return `${root}/openai/deployments/${encodeURIComponent(ctx.upstreamModel)}/${path}?${query}`
    },
    authHeaders: (apiKey) => ({ 'api-key': apiKey }),
  }
}

export function createAzureAdapter(endpoint: ProviderEndpoint, deps: AdapterDeps): ProviderAdapter {
  const apiVersion = azureApiVersion(endpoint.settings)
  const settings = { ...endpoint.settings }
  if (typeof settings.stream_usage !== 'boolean') settings.stream_usage = apiVersion >= FIRST_STREAM_USAGE_VERSION
  const responsesVersion = typeof settings.responses_api_version === 'string' ? settings.responses_api_version : undefined
  const base = createOpenAIAdapter({ ...endpoint, settings }, deps, azureDialect(endpoint.name, endpoint.baseUrl, apiVersion, responsesVersion))
  const name = endpoint.name
  const guard = <T>(call: () => Promise<T>): Promise<T> =>
    call().catch((err: unknown) => {
      throw contentFilterError(name, err)
    })

  return {
    endpoint,
    chat: (req, ctx) => guard(() => base.chat(req, ctx)),
    chatStream: (req, ctx) => guard(async () => normalizeAzureStream(await base.chatStream(req, ctx), 'chat', name)),
    completion: (req, ctx) => guard(() => base.completion!(req, ctx)),
    completionStream: (req, ctx) => guard(async () => normalizeAzureStream(await base.completionStream!(req, ctx), 'text', name)),
    embeddings: (req, ctx) => guard(() => base.embeddings!(req, ctx)),
    // The resource's models (base and fine-tuned), not its deployments: enough to prove a key works.
    listModels: (ctx) => base.listModels!(ctx),
    responses: (body, ctx) => guard(() => base.responses!(body, ctx)),
    responsesStream: (body, ctx) => guard(() => base.responsesStream!(body, ctx)),
    responseGet: (id, ctx) => base.responseGet!(id, ctx),
    responseDelete: (id, ctx) => base.responseDelete!(id, ctx),
    responseInputItems: (id, query, ctx) => base.responseInputItems!(id, query, ctx),
  }
}

/**
 * Azure refuses a prompt its content filter flags with 400, code `content_filter` and inner error
 * ResponsibleAIPolicyViolation. The shared mapper already keeps the code, the param and Azure's message
 * in OpenAI's shape; this adds what happened and what the caller can do. Only the message changes: the
 * error keeps its class, status, code and whatever the gateway reads from it.
 */
export function contentFilterError(provider: string, err: unknown): unknown {
  if (!(err instanceof ProxyError) || err.code !== 'content_filter') return err
  err.message = `${err.message.replace(/\.?\s*$/, '.')} Azure OpenAI's content filter blocked the prompt at provider '${provider}' (ResponsibleAIPolicyViolation); rephrase it, or change the deployment's content filtering policy.`
  return err
}

const STANDARD_CHUNK_FIELDS = new Set(['id', 'object', 'created', 'model', 'choices', 'usage', 'system_fingerprint', 'service_tier'])

/**
 * Azure streams are OpenAI's, with two additions a careless client trips on: the first chunk often has
 * `choices: []`, an empty id, model and object, and only `prompt_filter_results`; and with asynchronous
 * filtering, choices can arrive carrying `content_filter_results` but no `delta`. The first kind is folded
 * into the next chunk (its Azure fields ride along), so no chunk leaves with an empty id or object; a
 * missing delta becomes `{}`. The usage chunk (`choices: []` with `usage`) is OpenAI's own and passes.
 */
export async function* normalizeAzureStream<T extends ChatCompletionChunk | Completion>(source: AsyncIterable<T>, kind: 'chat' | 'text', provider: string): AsyncGenerator<T> {
  let held: Record<string, unknown> | null = null
  try {
    for await (const chunk of source) {
      if (chunk.choices.length === 0 && !chunk.usage) {
        held = { ...(held ?? {}), ...azureOnlyFields(chunk) }
        continue
      }
      // a spread copy carries no raw text (it is not enumerable); a chunk changed in place forgets its own
      const out = (held ? { ...(chunk as object), ...held } : chunk) as T
      held = null
      if (kind === 'chat') {
        for (const choice of (out as ChatCompletionChunk).choices) {
          if (choice.delta) continue
          choice.delta = {}
          forgetRawJson(out)
        }
      }
      yield out
    }
  } catch (err) {
    // a chunk without `choices` is the upstream's fault, not the proxy's
    throw answerFault(provider, err)
  }
}

function azureOnlyFields(chunk: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(chunk).filter(([k]) => !STANDARD_CHUNK_FIELDS.has(k)))
}
