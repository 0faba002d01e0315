import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { CliError, out, parseIntOption, type CliDeps } from './context.js'
import { currentLauncher, renderEnvFile, renderUnit, type UnitOptions } from './service-unit.js'

interface ServiceFlags {
  user: string
  dataDir: string
  host?: string
  port?: number
  envFile: string
  credential?: string
  unitDir: string
  name: string
  drainSeconds: number
  force?: boolean
}

function unitOptions(flags: ServiceFlags): UnitOptions {
  if (!path.isAbsolute(flags.dataDir)) throw new CliError(`--data-dir must be an absolute path for a service, not '${flags.dataDir}'.`)
  if (flags.credential !== undefined && !path.isAbsolute(flags.credential)) throw new CliError(`--credential must be an absolute path, not '${flags.credential}'.`)
  if (!/^[a-z_][a-z0-9_-]*$/i.test(flags.user)) throw new CliError(`--user '${flags.user}' is not a valid user name.`)
  return {
    launcher: currentLauncher(),
    dataDir: flags.dataDir,
    user: flags.user,
    envFile: flags.envFile,
    credential: flags.credential,
    host: flags.host,
    port: flags.port,
    drainSeconds: flags.drainSeconds,
    cpus: availableParallelism(),
  }
}

function withServiceOptions(cmd: Command): Command {
  return cmd
    .option('--user <name>', 'system user the service runs as', 'proxy')
    .option('--data-dir <dir>', 'absolute data directory of the service', '/var/lib/proxy')
    .option('--host <host>', 'address to listen on')
    .option('--port <port>', 'port to listen on', parseIntOption('--port'))
    .option('--env-file <path>', 'EnvironmentFile for secrets such as PROXY_MASTER_KEY', '/etc/proxy/proxy.env')
    .option('--credential <path>', 'file holding the master key (ring), loaded with LoadCredential= instead of PROXY_MASTER_KEY (root-owned, mode 0600)')
    .option('--unit-dir <dir>', 'where unit files live', '/etc/systemd/system')
    .option('--name <name>', 'unit name', 'proxy')
    .option('--drain-seconds <n>', 'how long a stop waits for open requests', parseIntOption('--drain-seconds'), 25)
}

export function serviceCommand(deps: CliDeps): Command {
  const cmd = new Command('service').description('run proxy as a systemd service')

  withServiceOptions(cmd.command('print'))
    .description('print the systemd unit without writing anything')
    .action((flags: ServiceFlags) => out(deps, renderUnit(unitOptions(flags))))

  withServiceOptions(cmd.command('install'))
    .description('write the systemd unit (and an environment file template if none exists)')
    .option('--force', 'overwrite an existing unit')
    .addHelpText('after', '\nThen:\n  sudo useradd --system --home /var/lib/proxy --shell /usr/sbin/nologin proxy\n  sudo systemctl daemon-reload && sudo systemctl enable --now proxy')
    .action((flags: ServiceFlags) => {
      const unit = renderUnit(unitOptions(flags))
      const unitPath = path.join(flags.unitDir, `${flags.name}.service`)
      if (existsSync(unitPath) && !flags.force) throw new CliError(`${unitPath} exists; pass --force to overwrite it.`)
      try {
        mkdirSync(flags.unitDir, { recursive: true })
        writeFileSync(unitPath, unit, { mode: 0o644 })
        if (!existsSync(flags.envFile)) {
          mkdirSync(path.dirname(flags.envFile), { recursive: true, mode: 0o755 })
          writeFileSync(flags.envFile, renderEnvFile(), { mode: 0o600 })
          chmodSync(flags.envFile, 0o600)
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'EACCES' || code === 'EPERM') throw new CliError(`Cannot write ${unitPath}: permission denied. Run with sudo, or use 'proxy service print'.`)
        throw e
      }
      out(
        deps,
        [
          `Wrote ${unitPath}${existsSync(flags.envFile) ? ` (environment file: ${flags.envFile})` : ''}.`,
          'Next:',
          `  id -u ${flags.user} >/dev/null 2>&1 || sudo useradd --system --home ${flags.dataDir} --shell /usr/sbin/nologin ${flags.user}`,
          `  sudo systemctl daemon-reload && sudo systemctl enable --now ${flags.name}`,
          `  sudo -u ${flags.user} PROXY_DATA_DIR=${flags.dataDir} proxy clients add my-app`,
        ].join('\n'),
      )
    })

  return cmd
}
