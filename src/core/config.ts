/**
 * The configuration snapshot every layer reads: providers with their decrypted keys, clients by key hash,
 * routes, policies and circuit overrides, as the store loads them (src/store/snapshot.ts) and the hot path
 * uses them, in memory. Only types here.
 */
import type { EffectivePolicy, PolicyDocument } from './policy-schema.js'
import type { PriceBook } from './prices.js'
import type { ProviderType } from './provider-types.js'
import type { WindowLimit } from './windows.js'

export type ClientRole = 'admin' | 'user'
export type KeyHealth = 'ok' | 'invalid'
export type CircuitStateName = 'closed' | 'open' | 'half_open'
export type CircuitOverrideMode = 'open' | 'closed'

/** A key's health as last written, carried in the config snapshot so a (re)started server restores it. */
export interface PersistedKeyHealth {
  health: KeyHealth
  reason: string | null
  changedAt: number | null
  cooldownUntil: number | null
  /** bumped by `proxy keys enable`: when it moves, the server forgets what it knew */
  epoch: number
}

export interface OverrideConfig {
  /** forced state, or null for automatic */
  mode: CircuitOverrideMode | null
  /** bumped by every `proxy circuit` command: the server resets the breaker when it changes */
  epoch: number
}

export interface PersistedCircuit {
  state: CircuitStateName
  openUntil: number | null
}

/** What the config snapshot carries about circuits, keyed by scope. */
export interface CircuitSnapshot {
  overrides: ReadonlyMap<string, OverrideConfig>
  states: ReadonlyMap<string, PersistedCircuit>
}

export interface RoutePattern {
  route: RouteConfig
  regex: RegExp
}

export interface KeyConfig {
  id: number
  label: string
  secret: string
  priority: number
  weight: number
  state: 'active' | 'disabled'
  /** health as last written by a server (restored at start; see src/gateway/key-health.ts) */
  health?: PersistedKeyHealth
}

export interface ProviderConfig {
  id: number
  name: string
  type: ProviderType
  baseUrl: string | null
  settings: Record<string, unknown>
  enabled: boolean
  keys: KeyConfig[]
  /** money budgets on everything this provider serves (migration 0009) */
  budgets?: Budgets
}

/** Money budgets per UTC day and month, in micro-dollars; null: none. */
export interface Budgets {
  daily: number | null
  monthly: number | null
}

/** A group of clients sharing limits, token quotas and budgets (migration 0009). */
export interface TeamConfig {
  id: number
  name: string
  limits: readonly WindowLimit[]
  dailyTokens: number | null
  monthlyTokens: number | null
  budgets: Budgets
}

export interface ClientConfig {
  id: number
  name: string
  role: ClientRole
  /** null: every routed model */
  models: ReadonlySet<string> | null
  expiresAt: number | null
  revoked: boolean
  /** sliding-window limits: the rpm/tpm columns and the `limits` column (migration 0004) as one list */
  limits: readonly WindowLimit[]
  dailyTokens: number | null
  monthlyTokens: number | null
  /** keep this client's request and response bodies in the audit trail */
  capture?: boolean
  /** a named policy layered over the route's and the global one */
  policy?: string | null
  /** the team whose limits, quotas and budgets this client also draws on */
  team?: TeamConfig | null
  /** the client's own money budgets */
  budgets?: Budgets
}

export interface RouteTarget {
  provider: ProviderConfig
  upstreamModel: string
  weight: number
}

export interface RouteConfig {
  model: string
  policy: string | null
  targets: RouteTarget[]
  createdAt: number
}

export interface ConfigSnapshot {
  loadedAt: number
  providers: ReadonlyMap<string, ProviderConfig>
  clientsByHash: ReadonlyMap<string, ClientConfig>
  routes: ReadonlyMap<string, RouteConfig>
  /** the routes whose name is a pattern, most specific first (src/store/route-patterns.ts) */
  patterns?: readonly RoutePattern[]
  policies: ReadonlyMap<string, PolicyDocument>
  /** the policy named 'global', with defaults filled in */
  globalPolicy: EffectivePolicy
  /** things an operator should hear about, such as a key that no longer decrypts */
  problems: string[]
  /** circuit overrides from `proxy circuit` and states persisted by a server */
  circuits?: CircuitSnapshot
  /** stored prices over the built-in table (`proxy prices`); the built-in table alone when absent */
  prices?: PriceBook
  /** budgets on all requests together */
  globalBudgets?: Budgets
  /** the output tokens a budget reservation assumes for a request that sets no max_tokens (`proxy budgets set --output-cap`) */
  budgetOutputCap?: number
  /** teams by name */
  teams?: ReadonlyMap<string, TeamConfig>
}

export const GLOBAL_POLICY = 'global'
