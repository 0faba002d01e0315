import { Command, Option } from 'commander'
import { parseDuration } from '../core/duration.js'
import { addClient, listClients, revokeClient, rotateClient } from '../store/repos/clients.js'
import { CliError, dataDirOption, jsonOption, out, printJson, table, withStore, type CliDeps } from './context.js'

export function clientsCommand(deps: CliDeps): Command {
  const cmd = new Command('clients').description('the API keys this proxy issues to applications (stored hashed, shown once)')

  dataDirOption(jsonOption(cmd.command('add <name>')))
    .description('create a client and print its key once')
    .addOption(new Option('--role <role>', 'admin clients may use the admin API').choices(['admin', 'user']).default('user'))
    .option('--models <list>', 'comma-separated models it may use (default: all)')
    .option('--expires <duration>', 'key lifetime such as 30d, 12h or 2w, or an ISO date')
    .addHelpText('after', '\nExamples:\n  proxy clients add my-app\n  proxy clients add ci --models gpt-4o-mini --expires 30d\n  proxy clients add ops --role admin --json')
    .action(async (name: string, opts: { role: 'admin' | 'user'; models?: string; expires?: string; json?: boolean; dataDir?: string }) => {
      const models = opts.models ? opts.models.split(',').map((m) => m.trim()).filter(Boolean) : null
      const expiresAt = opts.expires ? parseExpiry(opts.expires) : null
      const { client, key } = await withStore(deps, opts, (store) => addClient(store.db, { name, role: opts.role, models, expiresAt }))
      if (opts.json) return printJson(deps, { ...client, key })
      out(deps, `Created client '${client.name}' (${client.role}). Its key, shown only this once:\n\n  ${key}\n`)
    })

  dataDirOption(jsonOption(cmd.command('ls')))
    .description('list clients (keys are never shown, only their prefix)')
    .action(async (opts: { json?: boolean; dataDir?: string }) => {
      const clients = await withStore(deps, opts, (store) => listClients(store.db))
      if (opts.json) return printJson(deps, clients)
      if (clients.length === 0) return out(deps, "No clients yet. Create one with 'proxy clients add NAME'.")
      out(deps, table(clients.map((c) => ({ ...c, models: c.models ?? 'all' })), ['name', 'role', 'keyPrefix', 'status', 'models', 'expiresAt', 'createdAt']))
    })

  dataDirOption(cmd.command('revoke <name>'))
    .description('revoke a client key at once')
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withStore(deps, opts, (store) => revokeClient(store.db, name))
      out(deps, `Revoked client '${name}'. Its key stops working within about a second on running servers.`)
    })

  dataDirOption(jsonOption(cmd.command('rotate <name>')))
    .description('issue a new key for a client; the old one stops working')
    .action(async (name: string, opts: { json?: boolean; dataDir?: string }) => {
      const { client, key } = await withStore(deps, opts, (store) => rotateClient(store.db, name))
      if (opts.json) return printJson(deps, { ...client, key })
      out(deps, `New key for client '${client.name}', shown only this once:\n\n  ${key}\n`)
    })

  return cmd
}

export function parseExpiry(text: string, now = Date.now()): string {
  const ms = parseDuration(text)
  if (ms !== null) return new Date(now + ms).toISOString()
  const date = Date.parse(text)
  if (Number.isNaN(date)) throw new CliError(`--expires takes a duration like 30d, 12h, 2w or a date like 2027-01-31, not '${text}'.`)
  if (date <= now) throw new CliError(`--expires ${text} is in the past.`)
  return new Date(date).toISOString()
}
