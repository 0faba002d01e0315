import { afterAll, describe, expect, it } from 'vitest'
import { collectSetting } from '../../../src/cli/providers.js'
import { applyPreset, PRESET_NAMES, PRESETS } from '../../../src/providers/presets.js'
import { cli, tempDataDir } from '../../helpers/proxy.js'

describe('openai-compatible presets', () => {
  it.each([
    ['groq', 'https://api.groq.com/openai/v1'],
    ['together', 'https://api.together.xyz/v1'],
    ['openrouter', 'https://openrouter.ai/api/v1'],
    ['mistral', 'https://api.mistral.ai/v1'],
    ['deepseek', 'https://api.deepseek.com/v1'],
    ['gemini', 'https://generativelanguage.googleapis.com/v1beta/openai'],
    ['vllm', 'http://localhost:8000/v1'],
    ['lmstudio', 'http://localhost:1234/v1'],
  ])('%s fills in %s', (name, url) => {
    expect(applyPreset(name, { type: 'openai-compatible', settings: {} })).toMatchObject({ baseUrl: url, settings: { preset: name } })
  })

  it('covers exactly the documented presets', () => {
    expect([...PRESET_NAMES].sort()).toEqual(Object.keys(PRESETS).sort())
  })

  it('turns stream usage off for mistral, which rejects stream_options, unless the operator says otherwise', () => {
    expect(applyPreset('mistral', { type: 'openai-compatible', settings: {} }).settings.stream_usage).toBe(false)
    expect(applyPreset('mistral', { type: 'openai-compatible', settings: { stream_usage: true } }).settings.stream_usage).toBe(true)
    expect(applyPreset('groq', { type: 'openai-compatible', settings: {} }).settings).not.toHaveProperty('stream_usage')
  })

  it("maps openrouter's site_url and app_name settings to its attribution headers", () => {
    const { settings } = applyPreset('openrouter', { type: 'openai-compatible', settings: { site_url: 'https://my.app', app_name: 'My App', headers: { 'X-Other': '1' } } })
    expect(settings).toEqual({ preset: 'openrouter', headers: { 'X-Other': '1', 'HTTP-Referer': 'https://my.app', 'X-Title': 'My App' } })
  })

  it('lets an explicit base URL win (vLLM on another host)', () => {
    expect(applyPreset('vllm', { type: 'openai-compatible', baseUrl: 'http://gpu-box:8000/v1', settings: {} }).baseUrl).toBe('http://gpu-box:8000/v1')
  })

  it('refuses a preset with another type, and an unknown preset with the list', () => {
    expect(() => applyPreset('groq', { type: 'openai', settings: {} })).toThrow(/only with --type openai-compatible/)
    expect(() => applyPreset('grok', { type: 'openai-compatible', settings: {} })).toThrow(new RegExp(`Unknown preset 'grok'. Presets: ${PRESET_NAMES.join(', ')}`))
  })
})

describe('proxy providers add --preset', () => {
  const data = tempDataDir()
  afterAll(() => data.cleanup())

  it('stores the preset base URL and settings, and providers ls shows them', async () => {
    const added = await cli(data.dir, ['providers', 'add', 'mis', '--type', 'openai-compatible', '--preset', 'mistral'])
    expect(added).toMatchObject({ code: 0, stderr: '' })
    expect(added.stdout).toContain('https://api.mistral.ai/v1')
    const ls = await cli(data.dir, ['providers', 'ls', '--json'])
    expect(JSON.parse(ls.stdout)).toEqual([expect.objectContaining({ name: 'mis', type: 'openai-compatible', baseUrl: 'https://api.mistral.ai/v1', settings: { preset: 'mistral', stream_usage: false } })])
    const table = await cli(data.dir, ['providers', 'ls'])
    expect(table.stdout).toMatch(/mis\s+openai-compatible\s+https:\/\/api\.mistral\.ai\/v1.*preset=mistral stream_usage=false/)
  })

  it('says a local preset needs no key', async () => {
    const added = await cli(data.dir, ['providers', 'add', 'lms', '--type', 'openai-compatible', '--preset', 'lmstudio'])
    expect(added.stdout).toContain('No key needed')
  })

  it('refuses --preset with another type', async () => {
    const res = await cli(data.dir, ['providers', 'add', 'g1', '--type', 'openai', '--preset', 'groq'])
    expect(res.code).not.toBe(0)
    expect(res.stderr).toContain('--preset works only with --type openai-compatible')
  })

  it('refuses an unknown preset, listing the known ones', async () => {
    const res = await cli(data.dir, ['providers', 'add', 'g2', '--type', 'openai-compatible', '--preset', 'nope'])
    expect(res.code).not.toBe(0)
    expect(res.stderr).toContain(`Unknown preset 'nope'. Presets: ${PRESET_NAMES.join(', ')}`)
  })

  it('requires a base URL for azure', async () => {
    const res = await cli(data.dir, ['providers', 'add', 'az', '--type', 'azure'])
    expect(res.code).not.toBe(0)
    expect(res.stderr).toContain('--base-url https://RESOURCE.openai.azure.com')
  })

  it('nests options.NAME settings with typed values, for Ollama model options', async () => {
    expect(collectSetting('options.top_k=20', collectSetting('num_ctx=8192'))).toEqual({ num_ctx: 8192, options: { top_k: 20 } })
    const res = await cli(data.dir, ['providers', 'add', 'ol', '--type', 'ollama', '--setting', 'num_ctx=8192', '--setting', 'options.top_k=20', '--setting', 'options.mirostat=1'])
    expect(res.code).toBe(0)
    expect((await cli(data.dir, ['providers', 'ls'])).stdout).toContain('num_ctx=8192 options.top_k=20 options.mirostat=1')
  })
})
