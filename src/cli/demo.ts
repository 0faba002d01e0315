import type { Store } from '../store/db.js'
import { addClient, getClient, rotateClient } from '../store/repos/clients.js'
import { addProvider, listProviders } from '../store/repos/providers.js'
import { addRoute, listRoutes } from '../store/repos/routes.js'

export const DEMO_PROVIDER = 'demo'
export const DEMO_CLIENT = 'demo'
export const DEMO_MODELS: Record<string, string> = {
  'gpt-4o-mini': 'mock-gpt-4o-mini',
  'gpt-4o': 'mock-gpt-4o',
  'claude-sonnet-4-5': 'mock-claude-sonnet',
  'text-embedding-3-small': 'mock-embedding',
}

/**
 * Makes the store demo-ready: a mock provider, familiar model names routed to it, and a client limited
 * to those models. Only what is missing is added. The client key exists only as a hash, so a restart
 * issues a fresh one (the old one stops working) rather than leaving the user without a usable key.
 */
export async function seedDemo(store: Store): Promise<{ key: string; models: string[] }> {
  const { db } = store
  if (!(await listProviders(db)).some((p) => p.name === DEMO_PROVIDER)) {
    await addProvider(db, { name: DEMO_PROVIDER, type: 'mock', settings: { chunks: 12, chunk_gap_ms: 20 } })
  }
  const routed = new Set((await listRoutes(db)).map((r) => r.model))
  for (const [model, upstream] of Object.entries(DEMO_MODELS)) {
    if (!routed.has(model)) await addRoute(db, model, [{ provider: DEMO_PROVIDER, upstreamModel: upstream }])
  }
  const models = Object.keys(DEMO_MODELS)
  const existing = await getClient(db, DEMO_CLIENT).catch(() => null)
  if (existing && !existing.revoked_at) return { key: (await rotateClient(db, DEMO_CLIENT)).key, models }
  if (existing) return { key: '', models }
  return { key: (await addClient(db, { name: DEMO_CLIENT, models })).key, models }
}
