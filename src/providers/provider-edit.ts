/**
 * What a provider's base URL and settings become after an operator's change: the one set of rules
 * behind `proxy providers add` / `set` and the admin API's POST / PATCH /providers. Adding a provider
 * is an edit of an empty one. Each caller checks the URL's syntax at its own edge.
 */
import { invalidRequest } from '../core/errors.js'
import { applyPreset, withPresetHeaders } from './presets.js'

export interface ProviderEndpoint {
  baseUrl: string | null
  settings: Record<string, unknown>
}

export interface ProviderEdit {
  /** undefined: keep; null: the type's default */
  baseUrl?: string | null
  /** merged into the current settings; `headers` and `options` merge key by key */
  settings?: Record<string, unknown>
  /** settings to remove after the merge: `stream_usage`, `headers.X-Org` */
  unset?: readonly string[]
  /** a preset's base URL (unless baseUrl is given) and settings, applied again over the current ones */
  preset?: string
}

export function editProvider(type: string, current: ProviderEndpoint, edit: ProviderEdit): ProviderEndpoint {
  let baseUrl = edit.baseUrl === undefined ? current.baseUrl : edit.baseUrl
  let given = edit.settings ?? {}
  if (edit.preset !== undefined) ({ baseUrl, settings: given } = applyPreset(edit.preset, { type, baseUrl: edit.baseUrl, settings: given }))
  else given = withPresetHeaders(current.settings.preset, given)
  let settings = mergeSettings(current.settings, given)
  for (const key of edit.unset ?? []) settings = unsetSetting(settings, key)
  if (type === 'azure' && !baseUrl) {
    throw invalidRequest('An azure provider needs a base URL, the resource endpoint from the Azure portal: --base-url https://RESOURCE.openai.azure.com (baseUrl in the admin API).', 'baseUrl', 'missing_required_parameter')
  }
  return { baseUrl, settings }
}

function mergeSettings(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...base }
  for (const [key, value] of Object.entries(over)) merged[key] = isObject(merged[key]) && isObject(value) ? { ...merged[key], ...value } : value
  return merged
}

/** Removes `key`, or `group.name` inside an object setting (dropping the group once it is empty). */
function unsetSetting(settings: Record<string, unknown>, key: string): Record<string, unknown> {
  const next = { ...settings }
  if (key in next) {
    delete next[key]
    return next
  }
  const dot = key.indexOf('.')
  const group = dot > 0 ? next[key.slice(0, dot)] : undefined
  const name = key.slice(dot + 1)
  if (!isObject(group) || !(name in group)) {
    const known = settingNames(settings)
    throw invalidRequest(`There is no setting '${key}' to remove (${known.length ? `settings: ${known.join(', ')}` : 'no settings'}).`, 'unsetSettings', 'invalid_value')
  }
  const rest = { ...group }
  delete rest[name]
  if (Object.keys(rest).length > 0) next[key.slice(0, dot)] = rest
  else delete next[key.slice(0, dot)]
  return next
}

function settingNames(settings: Record<string, unknown>): string[] {
  return Object.entries(settings).flatMap(([k, v]) => (isObject(v) ? Object.keys(v).map((sub) => `${k}.${sub}`) : [k]))
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
