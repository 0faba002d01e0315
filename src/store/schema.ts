import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

export const PROVIDER_TYPES = ['openai', 'openai-compatible', 'anthropic', 'azure', 'ollama', 'mock'] as const
export type ProviderType = (typeof PROVIDER_TYPES)[number]
export type KeyState = 'active' | 'disabled' | 'retired'
export type ClientRole = 'admin' | 'user'

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
  expires_at: string | null
  revoked_at: string | null
  created_at: CreatedAt
  rotated_at: string | null
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

export interface Database {
  meta: MetaTable
  providers: ProviderTable
  provider_keys: ProviderKeyTable
  clients: ClientTable
  routes: RouteTable
  route_targets: RouteTargetTable
  policies: PolicyTable
}

export type ProviderRow = Selectable<ProviderTable>
export type ProviderKeyRow = Selectable<ProviderKeyTable>
export type ClientRow = Selectable<ClientTable>
export type RouteRow = Selectable<RouteTable>
export type RouteTargetRow = Selectable<RouteTargetTable>
export type PolicyRow = Selectable<PolicyTable>
export type NewClient = Insertable<ClientTable>
