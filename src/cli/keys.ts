import { Command } from 'commander'
import { dataDirOption, jsonOption, out, parseIntOption, printJson, table, withStore, type CliDeps } from './context.js'

const repos = () => import('../store/repos/provider-keys.js')
// node:readline, for the hidden prompt: only the commands that read a secret load it
const readSecret: typeof import('./secret-input.js').readSecret = async (...args) => (await import('./secret-input.js')).readSecret(...args)

export function keysCommand(deps: CliDeps): Command {
  const cmd = new Command('keys').description('upstream API keys, stored encrypted; secrets are read from stdin, a hidden prompt or --from-env, never from argv')

  dataDirOption(jsonOption(cmd.command('add <provider>')))
    .description("add an upstream key to a provider")
    .option('--label <label>', 'a name for the key (default key-N)')
    .option('--priority <n>', 'lower is tried first with the priority strategy', parseIntOption('--priority'), 0)
    .option('--weight <n>', 'share of traffic with the weighted strategy', parseIntOption('--weight'), 1)
    .option('--from-env <VAR>', 'read the secret from this environment variable')
    .addHelpText('after', '\nExamples:\n  printenv OPENAI_API_KEY | proxy keys add openai --label main\n  proxy keys add openai --from-env OPENAI_API_KEY --priority 1\n  proxy keys add openai            # prompts without echo on a terminal')
    .action(async (provider: string, opts: { label?: string; priority: number; weight: number; fromEnv?: string; json?: boolean; dataDir?: string }) => {
      const secret = await readSecret(deps, { fromEnv: opts.fromEnv, prompt: `Secret for a new key of '${provider}': ` })
      const { addKey } = await repos()
      const key = await withStore(deps, opts, (store) => addKey(store, { provider, secret, label: opts.label, priority: opts.priority, weight: opts.weight }))
      if (opts.json) return printJson(deps, key)
      out(deps, `Added key '${key.label}' (id ${key.id}) to provider '${key.provider}'. The secret is stored encrypted and will not be shown again.`)
    })

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list keys (never shows a secret)')
    .option('--provider <name>', 'only this provider')
    .option('--all', 'include retired keys')
    .action(async (opts: { provider?: string; all?: boolean; json?: boolean; dataDir?: string }) => {
      const { listKeys } = await repos()
      const keys = await withStore(deps, opts, (store) => listKeys(store.db, { provider: opts.provider, includeRetired: opts.all }))
      if (opts.json) return printJson(deps, keys)
      if (keys.length === 0) return out(deps, "No keys yet. Add one with 'proxy keys add PROVIDER'.")
      // health: 'invalid' (the upstream rejected it: rotate or re-enable it), 'cooling' (after a 429), or 'ok'
      out(deps, table(keys.map((k) => ({ ...k, health: k.health === 'cooling' ? `cooling until ${k.cooldownUntil}` : k.health })), ['id', 'provider', 'label', 'state', 'health', 'priority', 'weight', 'createdAt', 'rotatedAt', 'lastError']))
    })

  dataDirOption(jsonOption(cmd.command('rotate <key>')))
    .description('replace a key\'s secret (by id or label); the old secret is retired, requests in flight finish with it')
    .option('--provider <name>', 'which provider, when a label is used by several')
    .option('--from-env <VAR>', 'read the new secret from this environment variable')
    .action(async (ref: string, opts: { provider?: string; fromEnv?: string; json?: boolean; dataDir?: string }) => {
      const secret = await readSecret(deps, { fromEnv: opts.fromEnv, prompt: `New secret for key '${ref}': ` })
      const { rotateKey } = await repos()
      const result = await withStore(deps, opts, (store) => rotateKey(store, ref, secret, opts.provider))
      if (opts.json) return printJson(deps, result)
      out(deps, `Rotated key '${result.key.label}' of '${result.key.provider}': new id ${result.key.id}, old id ${result.retired.id} retired.`)
    })

  dataDirOption(cmd.command('rm <key>'))
    .description('delete a key (by id or label)')
    .option('--provider <name>', 'which provider, when a label is used by several')
    .action(async (ref: string, opts: { provider?: string; dataDir?: string }) => {
      const { removeKey } = await repos()
      const key = await withStore(deps, opts, (store) => removeKey(store.db, ref, opts.provider))
      out(deps, `Removed key '${key.label}' (id ${key.id}) of provider '${key.provider}'.`)
    })

  dataDirOption(jsonOption(cmd.command('enable <key>')))
    .description('put a key back in use (by id or label) and clear its recorded health (invalid, cooldown, circuit)')
    .option('--provider <name>', 'which provider, when a label is used by several')
    .action(async (ref: string, opts: { provider?: string; json?: boolean; dataDir?: string }) => {
      const [{ setKeyState }, { resetKeyHealth }] = await Promise.all([repos(), import('../store/repos/key-health.js')])
      const key = await withStore(deps, opts, async (store) => {
        const enabled = await setKeyState(store.db, ref, 'active', opts.provider)
        await resetKeyHealth(store.db, enabled.id)
        return { ...enabled, health: 'ok' as const, healthReason: null, cooldownUntil: null }
      })
      if (opts.json) return printJson(deps, key)
      out(deps, `Enabled key '${key.label}' of provider '${key.provider}'; its recorded health is cleared. Running servers use it again within about a second.`)
    })

  dataDirOption(jsonOption(cmd.command('disable <key>')))
    .description('take a key out of use (by id or label) without deleting it')
    .option('--provider <name>', 'which provider, when a label is used by several')
    .action(async (ref: string, opts: { provider?: string; json?: boolean; dataDir?: string }) => {
      const { setKeyState } = await repos()
      const key = await withStore(deps, opts, (store) => setKeyState(store.db, ref, 'disabled', opts.provider))
      if (opts.json) return printJson(deps, key)
      out(deps, `Disabled key '${key.label}' of provider '${key.provider}'. 'proxy keys enable ${key.label}' puts it back.`)
    })

  return cmd
}
