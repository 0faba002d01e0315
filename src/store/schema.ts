import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

import type { ProviderType } from '../core/provider-types.js'

export { PROVIDER_TYPES, type ProviderType } from '../core/provider-types.js'
import type { CircuitOverrideMode, CircuitStateName, ClientRole, KeyHealth } from '../core/config.js'

export type { CircuitOverrideMode, CircuitStateName, ClientRole, KeyHealth } from '../core/config.js'
export type KeyState = 'active' | 'disabled' | 'retired'

type CreatedAt = ColumnType<string, string, never>

export interface MetaTable {
  key: string
  value: string
}

export interface ProviderTable {
  id: Generated<number>
  name: string
  type: ProviderType
  base_url: string | null
  settings: string
  enabled: Generated<number>
  created_at: CreatedAt
  updated_at: string
}

export interface ProviderKeyTable {
  id: Generated<number>
  provider_id: number
  label: string
  secret: string
  priority: Generated<number>
  weight: Generated<number>
  state: Generated<KeyState>
  created_at: CreatedAt
  rotated_at: string | null
  last_used_at: string | null
  failure_count: Generated<number>
  last_error: string | null
  /** migration 0003: 'invalid' after an upstream 401/403, until rotated or re-enabled */
  health: Generated<KeyHealth>
  health_reason: string | null
  health_changed_at: string | null
  /** after an upstream 429: skipped until then */
  cooldown_until: string | null
  /** bumped by `proxy keys enable`, so a running server forgets the key's recorded health */
  health_epoch: Generated<number>
}

export interface ClientTable {
  id: Generated<number>
  name: string
  key_hash: string
  key_prefix: string
  role: Generated<ClientRole>
  models: string | null
  rpm: number | null
  tpm: number | null
  daily_tokens: number | null
  monthly_tokens: number | null
  /** migration 0004: JSON [{kind:'requests'|'tokens', limit, window_s}] of sliding-window limits besides rpm/tpm */
  limits: Generated<string | null>
  expires_at: string | null
  revoked_at: string | null
  created_at: CreatedAt
  rotated_at: string | null
  /** 1: keep request and response bodies in the audit trail (migration 0002) */
  capture: Generated<number>
  /** a named policy layered over the route's and the global one (migration 0003) */
  policy: string | null
  /** the team whose limits, quotas and budgets this client also draws on (migration 0010) */
  team_id: Generated<number | null>
}

export interface RouteTable {
  id: Generated<number>
  model: string
  policy: string | null
  created_at: CreatedAt
}

export interface RouteTargetTable {
  id: Generated<number>
  route_id: number
  position: number
  provider_id: number
  upstream_model: string
  weight: Generated<number>
}

export interface PolicyTable {
  id: Generated<number>
  name: string
  document: string
  updated_at: string
}

/** One row per request (migration 0002); written in batches by the telemetry's AuditWriter. */
export interface AuditTable {
  id: Generated<number>
  request_id: string
  ts: string
  method: string
  path: string
  client: string | null
  ip: string | null
  model: string | null
  provider: string | null
  upstream_model: string | null
  key_label: string | null
  stream: number
  status: number
  latency_ms: number
  upstream_ms: number | null
  ttft_ms: number | null
  prompt_tokens: number | null
  completion_tokens: number | null
  total_tokens: number | null
  cost_usd: number | null
  attempts: number
  fallback: string | null
  error_code: string | null
  error_message: string | null
  request_body: string | null
  response_body: string | null
  /** what the response cache did: hit, miss, bypass; null where no cache policy applied (migration 0007) */
  cache: string | null
  /** a hit: what its answer cost when it was made */
  saved_usd: number | null
  /** the request's trace id when traces were on (migration 0008) */
  trace_id: string | null
  /** a body too large to keep inline, in the capture store instead: its object key and size (migration 0009) */
  request_body_key: string | null
  request_body_bytes: number | null
  response_body_key: string | null
  response_body_bytes: number | null
  /** why bodies over the inline cap were dropped instead (the capture store failed); null when none was */
  capture_dropped: string | null
}

/** Requests, tokens and cost per UTC day, client and model (migration 0002). */
export interface UsageTable {
  day: string
  client: string
  model: string
  requests: number
  errors: number
  prompt_tokens: number
  completion_tokens: number
  cost_usd: number
  /** requests answered from the response cache, and the cost they saved (migration 0007) */
  cache_hits: number
  saved_usd: number
}

/** Circuit breaker states, written behind by the server (migration 0003). scope: 'p:<provider id>' | 'k:<key id>'. */
export interface CircuitStateTable {
  scope: string
  provider_id: number
  key_id: number | null
  state: CircuitStateName
  open_until: string | null
  updated_at: string
}

/** Operator overrides from `proxy circuit` (migration 0003); an epoch bump resets the breaker. */
export interface CircuitOverrideTable {
  scope: string
  provider_id: number
  key_id: number | null
  mode: CircuitOverrideMode | null
  epoch: Generated<number>
  updated_at: string
}

export type QuotaPeriod = 'day' | 'month'

/** Tokens per client and UTC day or month (migration 0004), written behind by the server for quotas. */
export interface QuotaUsageTable {
  client_id: number
  period: QuotaPeriod
  /** 'YYYY-MM-DD' for a day, 'YYYY-MM' for a month */
  period_key: string
  tokens: number
  updated_at: string
}

/** Responses API objects kept by the proxy (migration 0006) */
export interface StoredResponseTable {
  id: string
  client_id: number
  provider: string
  key_label: string | null
  native: number
  model: string
  previous_id: string | null
  input: string | null
  response: string | null
  created_at: string
  expires_at: string
}

/** USD per 1M tokens for a model, for one provider or ('') every provider (migration 0010) */
export interface PriceTable {
  model: string
  provider: Generated<string>
  input: number
  output: number
  cached_input: number | null
  cache_write: number | null
  updated_at: string
}

/** A group of clients sharing limits, quotas and budgets (migration 0010) */
export interface TeamTable {
  id: Generated<number>
  name: string
  rpm: number | null
  tpm: number | null
  limits: string | null
  daily_tokens: number | null
  monthly_tokens: number | null
  created_at: CreatedAt
}

export type BudgetLevel = 'global' | 'client' | 'team' | 'provider'

/** A money budget in micro-dollars per UTC day or month (migration 0010) */
export interface BudgetTable {
  level: BudgetLevel
  subject_id: number
  period: QuotaPeriod
  limit_micro: number
  updated_at: string
}

/** Spend (micro-dollars) and team tokens per UTC period, written behind by the server (migration 0010) */
export interface PeriodTotalTable {
  scope: string
  subject_id: number
  period: QuotaPeriod
  period_key: string
  amount: number
  updated_at: string
}

/** The configuration change counter a running server polls (migration 0005) */
export interface ConfigVersionTable {
  id: number
  version: number
}

export interface Database {
  meta: MetaTable
  providers: ProviderTable
  provider_keys: ProviderKeyTable
  clients: ClientTable
  routes: RouteTable
  route_targets: RouteTargetTable
  policies: PolicyTable
  circuit_states: CircuitStateTable
  circuit_overrides: CircuitOverrideTable
  audit: AuditTable
  usage: UsageTable
  quota_usage: QuotaUsageTable
  responses: StoredResponseTable
  prices: PriceTable
  teams: TeamTable
  budgets: BudgetTable
  period_totals: PeriodTotalTable
  config_version: ConfigVersionTable
}

export type ProviderRow = Selectable<ProviderTable>
export type ProviderKeyRow = Selectable<ProviderKeyTable>
export type ClientRow = Selectable<ClientTable>
export type RouteRow = Selectable<RouteTable>
export type RouteTargetRow = Selectable<RouteTargetTable>
export type PolicyRow = Selectable<PolicyTable>
export type NewClient = Insertable<ClientTable>
export type AuditRow = Selectable<AuditTable>
export type UsageRow = Selectable<UsageTable>
