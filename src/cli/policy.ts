import { readFile } from 'node:fs/promises'
import { Command } from 'commander'
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
      const { setPolicy } = await import('../store/repos/policies.js')
      await withStore(deps, opts, (store) => setPolicy(store.db, name, doc))
      out(deps, `Stored policy '${name}'.`)
    })

  dataDirOption(jsonOption(cmd.command('show [name]')))
    .description('print the effective policy of a stored policy or of a routed model (defaults < global < route < --client), or all policies without a name')
    .option('--raw', 'print the document as stored, without defaults or layering')
    .option('--client <name>', "layer this client's policy on top (what its requests run under)")
    .addHelpText('after', '\nExamples:\n  proxy policy show global\n  proxy policy show gpt-4o-mini              # the policy requests for this model run under\n  proxy policy show gpt-4o-mini --client ci')
    .action(async (name: string | undefined, opts: { raw?: boolean; client?: string; json?: boolean; dataDir?: string }) => {
      const [{ effectivePolicy, withPolicyDefaults }, { getClient }, { listRoutes }, { GLOBAL_POLICY }, { getPolicy, listPolicies }] = await Promise.all([
        import('../core/policy-schema.js'),
        import('../store/repos/clients.js'),
        import('../store/repos/routes.js'),
        import('../store/snapshot.js'),
        import('../store/repos/policies.js'),
      ])
      const result = await withStore(deps, opts, async (store) => {
        if (!name) {
          return (await listPolicies(store.db)).map((p) => ({ name: p.name, updatedAt: p.updatedAt, policy: opts.raw ? p.document : withPolicyDefaults(p.document) }))
        }
        const find = (policy: string) => getPolicy(store.db, policy).then((p) => p.document).catch(() => null)
        const global = await find(GLOBAL_POLICY)
        const clientPolicy = opts.client ? (await getClient(store.db, opts.client)).policy : null
        const client = clientPolicy ? await find(clientPolicy) : null
        const stored = await find(name)
        const route = stored === null && name !== GLOBAL_POLICY ? (await listRoutes(store.db)).find((r) => r.model === name) : undefined
        if (stored === null && name !== GLOBAL_POLICY && !route) {
          throw new CliError(`'${name}' is neither a stored policy nor a routed model. See 'proxy policy show' and 'proxy models ls'.`)
        }
        const routePolicy = route ? (route.policy ? await find(route.policy) : null) : stored
        const layers = ['defaults']
        if (global) layers.push('global')
        if (route?.policy) layers.push(`route policy '${route.policy}'${routePolicy ? '' : ' (missing: skipped)'}`)
        if (!route && name !== GLOBAL_POLICY) layers.push(`policy '${name}'`)
        if (clientPolicy) layers.push(`client policy '${clientPolicy}'${client ? '' : ' (missing: skipped)'}`)
        if (opts.raw) return { name, stored: stored !== null, policy: stored ?? routePolicy ?? {} }
        return {
          name,
          ...(route ? { route: route.model } : { stored: stored !== null }),
          layers,
          policy: effectivePolicy({ global: global ?? null, route: name === GLOBAL_POLICY ? null : routePolicy, client }),
        }
      })
      if (Array.isArray(result) && result.length === 0 && !opts.json) {
        return out(deps, "No policies stored; the defaults apply. See them with 'proxy policy show global'.")
      }
      printJson(deps, result)
    })

  cmd
    .command('schema')
    .description("print the policy document's JSON schema (draft 2020-12)")
    .action(async () => {
      const { policyJsonSchema } = await import('../core/policy-schema.js')
      printJson(deps, policyJsonSchema())
    })

  return cmd
}

async function readStdin(deps: CliDeps): Promise<string> {
  let text = ''
  for await (const chunk of deps.stdin) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')
  return text
}
