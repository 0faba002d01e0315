import { Command, Option } from 'commander'
import { PROVIDER_TYPES, type ProviderType } from '../store/schema.js'
import { editProvider } from '../providers/provider-edit.js'
import { PRESET_NAMES, PRESETS, isPresetName } from '../providers/presets.js'
import { CliError, dataDirOption, jsonOption, out, printJson, repeatable, table, withStore, type CliDeps } from './context.js'
import { providersTestCommand } from './providers-test.js'

/** `--setting key=value`, repeatable; numbers and booleans are stored as such, `headers.X=v` and `options.X=v` nest. */
export function collectSetting(text: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new CliError(`--setting takes key=value, not '${text}'.`)
  const key = text.slice(0, eq).trim()
  const raw = text.slice(eq + 1)
  const value: unknown = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw
  const next = { ...previous }
  if (key.startsWith('headers.')) next.headers = { ...(next.headers as object | undefined), [key.slice(8)]: raw }
  else if (key.startsWith('options.')) next.options = { ...(next.options as object | undefined), [key.slice(8)]: value }
  else next[key] = value
  return next
}

const repos = () => import('../store/repos/providers.js')

export function providersCommand(deps: CliDeps): Command {
  const cmd = new Command('providers').description('upstream providers the proxy forwards to')

  dataDirOption(jsonOption(cmd.command('add <name>')))
    .description('add a provider')
    .addOption(new Option('--type <type>', 'wire format').choices(PROVIDER_TYPES as unknown as string[]).makeOptionMandatory())
    .option('--base-url <url>', "base URL as the provider's SDK takes it (e.g. https://api.openai.com/v1)")
    .option('--setting <key=value>', 'provider setting, repeatable (e.g. latency_ms=50, headers.X-Org=acme)', collectSetting, {})
    .option('--preset <name>', `with --type openai-compatible: fill in a known host's base URL and quirks (${PRESET_NAMES.join(', ')})`)
    .addHelpText(
      'after',
      '\nExamples:\n  proxy providers add openai --type openai\n  proxy providers add groq --type openai-compatible --preset groq\n  proxy providers add local --type openai-compatible --base-url http://127.0.0.1:1234/v1\n' +
        '  proxy providers add azure --type azure --base-url https://RESOURCE.openai.azure.com --setting api_version=2024-10-21\n' +
        '  proxy providers add ollama --type ollama --setting num_ctx=8192\n  proxy providers add fake --type mock --setting latency_ms=100 --setting error_rate=0.1',
    )
    .action(async (name: string, opts: { type: ProviderType; baseUrl?: string; setting: Record<string, unknown>; preset?: string; json?: boolean; dataDir?: string }) => {
      if (opts.baseUrl) checkUrl(opts.baseUrl)
      const endpoint = editProvider(opts.type, { baseUrl: null, settings: {} }, { baseUrl: opts.baseUrl, settings: opts.setting, preset: opts.preset })
      const { addProvider } = await repos()
      const provider = await withStore(deps, opts, (store) => addProvider(store.db, { name, type: opts.type, ...endpoint }))
      if (opts.json) return printJson(deps, provider)
      const keyless = opts.type === 'ollama' || (opts.preset !== undefined && isPresetName(opts.preset) && !PRESETS[opts.preset].keyRequired)
      const next = keyless ? `No key needed; check it with: proxy providers test ${provider.name}` : `Next: proxy keys add ${provider.name}`
      out(deps, `Added provider '${provider.name}' (${provider.type}${provider.baseUrl ? `, ${provider.baseUrl}` : ''}). ${next}`)
    })

  dataDirOption(jsonOption(cmd.command('set <name>')))
    .description("change a provider's base URL or settings in place: its keys and routes stay, a running server uses the change within a second")
    .option('--base-url <url>', 'the new base URL')
    .option('--setting <key=value>', 'set a setting, repeatable; the other settings are kept (headers.X=v adds or replaces one header)', collectSetting)
    .option('--unset-setting <key>', 'remove a setting, repeatable (e.g. stream_usage, headers.X-Org); key= would store an empty value instead', repeatable)
    .option('--preset <name>', `an openai-compatible provider: its base URL (unless --base-url is given) and settings again, over the current ones (${PRESET_NAMES.join(', ')})`)
    .addHelpText(
      'after',
      '\nExamples:\n  proxy providers set local --base-url http://10.0.0.7:1234/v1\n  proxy providers set azure --setting api_version=2025-01-01-preview\n' +
        '  proxy providers set local --setting headers.X-Org=acme --unset-setting stream_usage\n  proxy providers set mis --preset mistral',
    )
    .action(async (name: string, opts: { baseUrl?: string; setting?: Record<string, unknown>; unsetSetting?: string[]; preset?: string; json?: boolean; dataDir?: string }) => {
      if (opts.baseUrl !== undefined) checkUrl(opts.baseUrl)
      if (opts.baseUrl === undefined && opts.setting === undefined && opts.unsetSetting === undefined && opts.preset === undefined) {
        throw new CliError('Nothing to change: give --base-url, --setting, --unset-setting or --preset.')
      }
      const edit = { baseUrl: opts.baseUrl, settings: opts.setting, unset: opts.unsetSetting, preset: opts.preset }
      const { updateProvider } = await repos()
      const provider = await withStore(deps, opts, (store) => updateProvider(store.db, name, (current) => editProvider(current.type, current, edit)))
      if (opts.json) return printJson(deps, provider)
      const settings = settingsText(provider.settings)
      out(deps, `Updated provider '${provider.name}' (${provider.type}, ${provider.baseUrl ?? 'default base URL'}${settings ? `; ${settings}` : ''}). A running server uses it within a second.`)
    })

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list providers')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const { listProviders } = await repos()
      const providers = await withStore(deps, opts, (store) => listProviders(store.db))
      if (opts.json) return printJson(deps, providers)
      if (providers.length === 0) return out(deps, "No providers yet. Add one with 'proxy providers add NAME --type openai'.")
      out(deps, table(providers.map((p) => ({ ...p, baseUrl: p.baseUrl ?? '(default)', settings: settingsText(p.settings), enabled: p.enabled ? 'yes' : 'no' })), ['name', 'type', 'baseUrl', 'keys', 'enabled', 'settings']))
    })

  dataDirOption(cmd.command('rm <name>'))
    .description('remove a provider and its keys')
    .action(async (name: string, opts: { dataDir?: string }) => {
      const { removeProvider } = await repos()
      await withStore(deps, opts, (store) => removeProvider(store.db, name))
      out(deps, `Removed provider '${name}' and its keys.`)
    })

  cmd.addCommand(providersTestCommand(deps))

  return cmd
}

function settingsText(settings: Record<string, unknown>): string {
  return Object.entries(settings)
    .map(([k, v]) =>
      k === 'headers' && v && typeof v === 'object'
        ? Object.keys(v).map((h) => `headers.${h}=…`).join(' ')
        : v && typeof v === 'object'
          ? Object.entries(v).map(([sub, sv]) => `${k}.${sub}=${String(sv)}`).join(' ')
          : `${k}=${String(v)}`,
    )
    .join(' ')
}

function checkUrl(url: string): void {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new CliError(`--base-url '${url}' is not a URL.`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`--base-url must be http:// or https://, not ${parsed.protocol}`)
}
