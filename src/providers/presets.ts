/**
 * Presets for well-known OpenAI-compatible hosts: `proxy providers add NAME --type openai-compatible
 * --preset groq` fills in the base URL and any setting the host needs. A preset is only a starting point:
 * an explicit --base-url or --setting wins, and any other base URL works without a preset.
 *
 * Quirks recorded here (checked against the hosts' issue trackers, see the notes):
 * - mistral rejects `stream_options` with 422 "extra_forbidden" and reports stream usage without being
 *   asked, so its preset sets stream_usage=false.
 * - openrouter takes optional attribution headers; `--setting site_url=…` and `--setting app_name=…` become
 *   its `HTTP-Referer` and `X-Title` headers.
 */
import { invalidRequest } from '../core/errors.js'

export const PRESET_NAMES = ['groq', 'together', 'openrouter', 'mistral', 'deepseek', 'gemini', 'vllm', 'lmstudio'] as const
export type PresetName = (typeof PRESET_NAMES)[number]

export interface Preset {
  baseUrl: string
  /** settings the preset starts from; the operator's own --setting values win */
  settings: Record<string, unknown>
  /** short setting names for the host's optional headers: `site_url` -> `headers.HTTP-Referer` */
  headerSettings?: Record<string, string>
  /** false for local servers that take no key */
  keyRequired: boolean
  note: string
}

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  groq: {
    baseUrl: 'https://api.groq.com/openai/v1',
    settings: {},
    keyRequired: true,
    note: 'accepts stream_options (it rejected it until mid-2024)',
  },
  together: {
    baseUrl: 'https://api.together.xyz/v1',
    settings: {},
    keyRequired: true,
    note: '',
  },
  openrouter: {
    baseUrl: 'https://openrouter.ai/api/v1',
    settings: {},
    headerSettings: { site_url: 'HTTP-Referer', app_name: 'X-Title' },
    keyRequired: true,
    note: 'optional attribution: --setting site_url=https://your.app --setting app_name=YourApp',
  },
  mistral: {
    baseUrl: 'https://api.mistral.ai/v1',
    settings: { stream_usage: false },
    keyRequired: true,
    note: 'rejects stream_options (422 extra_forbidden) and sends stream usage unasked, so stream_usage=false',
  },
  deepseek: {
    baseUrl: 'https://api.deepseek.com/v1',
    settings: {},
    keyRequired: true,
    note: '',
  },
  gemini: {
    baseUrl: 'https://generativelanguage.googleapis.com/v1beta/openai',
    settings: {},
    keyRequired: true,
    note: "Google AI Studio key; Gemini's OpenAI layer is in beta and rejects some OpenAI fields",
  },
  vllm: {
    baseUrl: 'http://localhost:8000/v1',
    settings: {},
    keyRequired: false,
    note: 'a key only when the server was started with --api-key',
  },
  lmstudio: {
    baseUrl: 'http://localhost:1234/v1',
    settings: {},
    keyRequired: false,
    note: 'no key unless API tokens are turned on in LM Studio',
  },
}

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name)
}

export interface PresetInput {
  type: string
  baseUrl?: string | null
  settings: Record<string, unknown>
}

/**
 * Applies a preset to what the operator gave: the preset's base URL unless one was given, the preset's
 * settings under the operator's, header short names turned into `headers.*`, and `preset` recorded so
 * `providers ls` shows where the settings came from.
 */
export function applyPreset(name: string, input: PresetInput): { baseUrl: string; settings: Record<string, unknown> } {
  if (input.type !== 'openai-compatible') {
    throw invalidRequest(`--preset works only with --type openai-compatible (not '${input.type}').`, 'preset')
  }
  if (!isPresetName(name)) {
    throw invalidRequest(`Unknown preset '${name}'. Presets: ${PRESET_NAMES.join(', ')}. Any other host works with --base-url and no preset.`, 'preset')
  }
  const preset = PRESETS[name]
  const settings = withPresetHeaders(name, { preset: name, ...preset.settings, ...input.settings })
  return { baseUrl: input.baseUrl || preset.baseUrl, settings }
}

/**
 * A preset's short setting names (openrouter's `site_url`) turned into the headers they stand for, so
 * they work when given later too (`providers set`); any other name, or preset, passes through.
 */
export function withPresetHeaders(name: unknown, input: Record<string, unknown>): Record<string, unknown> {
  const shorts = typeof name === 'string' && isPresetName(name) ? PRESETS[name].headerSettings : undefined
  if (!shorts) return input
  const settings = { ...input }
  for (const [short, header] of Object.entries(shorts)) {
    if (settings[short] === undefined) continue
    settings.headers = { ...(settings.headers as Record<string, unknown> | undefined), [header]: String(settings[short]) }
    delete settings[short]
  }
  return settings
}
