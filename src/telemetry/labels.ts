/**
 * Metric label values, bounded by construction: a model, provider, client or key label is used only when
 * the current configuration snapshot knows it; anything else (a typo'd model name, a raw path) becomes a
 * fixed placeholder. A metric label never carries a raw user string or a secret.
 */
import { findRoute } from '../store/route-patterns.js'
import type { ConfigSnapshot } from '../core/config.js'

export const NONE = 'none'
export const UNKNOWN = 'unknown'

const ROUTES: Record<string, string> = {
  '/v1/chat/completions': '/v1/chat/completions',
  '/v1/completions': '/v1/completions',
  '/v1/embeddings': '/v1/embeddings',
  '/v1/responses': '/v1/responses',
  '/v1/messages': '/v1/messages',
  '/v1/messages/count_tokens': '/v1/messages/count_tokens',
  '/v1/models': '/v1/models',
  '/metrics': '/metrics',
  '/health': '/health',
  '/readyz': '/readyz',
}

export function routeLabel(path: string): string {
  return ROUTES[path] ?? (path.startsWith('/v1/models/') ? '/v1/models/{id}' : path.startsWith('/v1/responses/') ? '/v1/responses/{id}' : 'other')
}

const STATUS_LABELS: string[] = []
for (let s = 100; s < 600; s++) STATUS_LABELS[s] = String(s)

export function statusLabel(status: number): string {
  return STATUS_LABELS[status] ?? 'other'
}

interface Names {
  clients: ReadonlySet<string>
  keys: ReadonlyMap<string, ReadonlySet<string>>
}

/** Label lookups against one snapshot; the derived name sets are built once per snapshot. */
export class LabelSet {
  readonly #config: () => ConfigSnapshot
  readonly #names = new WeakMap<ConfigSnapshot, Names>()

  constructor(config: () => ConfigSnapshot) {
    this.#config = config
  }

  model(model: string | null): string {
    if (model === null) return NONE
    // a name caught by a pattern is labelled with the pattern, so clients cannot grow the label set
    return findRoute(this.#config(), model)?.model ?? UNKNOWN
  }

  provider(provider: string | null): string {
    if (provider === null) return NONE
    return this.#config().providers.has(provider) ? provider : UNKNOWN
  }

  client(client: string | null): string {
    if (client === null) return NONE
    return this.#namesOf(this.#config()).clients.has(client) ? client : UNKNOWN
  }

  /** a key's label (never its secret), when the provider has a key by that label */
  key(provider: string | null, key: string | null | undefined): string {
    if (!key) return ''
    const keys = provider === null ? undefined : this.#namesOf(this.#config()).keys.get(provider)
    return keys?.has(key) ? key : UNKNOWN
  }

  #namesOf(snapshot: ConfigSnapshot): Names {
    let names = this.#names.get(snapshot)
    if (!names) {
      const clients = new Set<string>()
      for (const c of snapshot.clientsByHash.values()) clients.add(c.name)
      const keys = new Map<string, Set<string>>()
      for (const p of snapshot.providers.values()) keys.set(p.name, new Set(p.keys.map((k) => k.label)))
      names = { clients, keys }
      this.#names.set(snapshot, names)
    }
    return names
  }
}

/** Anything code-chosen (a limit scope, a circuit state): short lowercase words only. */
export function wordLabel(value: unknown): string {
  return typeof value === 'string' && /^[a-z][a-z0-9_-]{0,31}$/.test(value) ? value : 'other'
}
