import { readFile } from 'node:fs/promises'
import { Command } from 'commander'
import { withPolicyDefaults } from '../core/policy-schema.js'
import { GLOBAL_POLICY } from '../store/snapshot.js'
import { getPolicy, listPolicies, setPolicy } from '../store/repos/policies.js'
import { CliError, dataDirOption, jsonOption, out, printJson, withStore, type CliDeps } from './context.js'

export function policyCommand(deps: CliDeps): Command {
  const cmd = new Command('policy').description("retry, timeout, circuit, key-strategy, fallback and limit policies (the one named 'global' applies everywhere)")

  dataDirOption(cmd.command('set <name>'))
    .description('validate and store a policy document')
    .requiredOption('--file <path>', "JSON policy document ('-' for stdin)")
    .addHelpText('after', `\nExample:\n  echo '{"keys":{"strategy":"priority"},"retry":{"max_attempts":4}}' | proxy policy set global --file -`)
    .action(async (name: string, opts: { file: string; dataDir?: string }) => {
      const text = opts.file === '-' ? await readStdin(deps) : await readFile(opts.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new CliError(`Cannot read ${opts.file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
      })
      let doc: unknown
      try {
        doc = JSON.parse(text)
      } catch (e) {
        throw new CliError(`${opts.file} is not valid JSON: ${(e as Error).message}`)
      }
      await withStore(deps, opts, (store) => setPolicy(store.db, name, doc))
      out(deps, `Stored policy '${name}'.`)
    })

  dataDirOption(jsonOption(cmd.command('show [name]')))
    .description('print a policy with its defaults filled in (all policies without a name)')
    .option('--raw', 'print the document as stored, without defaults')
    .action(async (name: string | undefined, opts: { raw?: boolean; json?: boolean; dataDir?: string }) => {
      const result = await withStore(deps, opts, async (store) => {
        if (name) {
          const stored = name === GLOBAL_POLICY ? await getPolicy(store.db, name).catch(() => null) : await getPolicy(store.db, name)
          const global = name === GLOBAL_POLICY ? null : await getPolicy(store.db, GLOBAL_POLICY).catch(() => null)
          const doc = stored?.document ?? {}
          return { name, stored: stored !== null, policy: opts.raw ? doc : withPolicyDefaults({ ...global?.document, ...doc }) }
        }
        return (await listPolicies(store.db)).map((p) => ({ name: p.name, updatedAt: p.updatedAt, policy: opts.raw ? p.document : withPolicyDefaults(p.document) }))
      })
      if (Array.isArray(result) && result.length === 0 && !opts.json) {
        return out(deps, "No policies stored; the defaults apply. See them with 'proxy policy show global'.")
      }
      printJson(deps, result)
    })

  return cmd
}

async function readStdin(deps: CliDeps): Promise<string> {
  let text = ''
  for await (const chunk of deps.stdin) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')
  return text
}
