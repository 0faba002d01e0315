import path from 'node:path'
import { isSea } from 'node:sea'
import { CREDENTIAL_NAME } from '../store/paths.js'
import { packageRoot } from './package-root.js'
import { ONE_CPU_GC_FLAG, SERVE_ENV_ASSIGNMENTS, serveV8Flags } from './respawn.js'

/** What the unit runs: node with the package's bin script, or the single executable (build/exe.ts). */
export type Launcher = { nodePath: string; proxyBin: string } | { executable: string }

export interface UnitOptions {
  launcher: Launcher
  dataDir: string
  user: string
  envFile: string
  /** a file holding the master key (ring), passed as a systemd credential instead of PROXY_MASTER_KEY */
  credential?: string
  host?: string
  port?: number
  drainSeconds: number
  /** CPUs of the machine the unit is written on: one gets V8's one-CPU GC flag (respawn.ts) */
  cpus: number
}

/**
 * A hardened systemd unit. The process may write only its data directory; the V8 JIT needs
 * writable+executable memory, so MemoryDenyWriteExecute is deliberately absent.
 */
export function renderUnit(o: UnitOptions): string {
  const args = ['serve', '--data-dir', o.dataDir, '--drain-seconds', String(o.drainSeconds)]
  if (o.host) args.push('--host', o.host)
  if (o.port !== undefined) args.push('--port', String(o.port))
  const programs = 'executable' in o.launcher ? [o.launcher.executable] : [o.launcher.nodePath, o.launcher.proxyBin]
  const underHome = [o.dataDir, ...programs].some((p) => p.startsWith('/home/') || p.startsWith('/root/') || p === '/root')
  const stateDir = o.dataDir.startsWith('/var/lib/') ? o.dataDir.slice('/var/lib/'.length) : null
  const v8Flags = serveV8Flags(o.cpus)
  const lines = [
    '[Unit]',
    'Description=proxy: OpenAI-compatible LLM gateway',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `User=${o.user}`,
    `Group=${o.user}`,
    // The V8 flags on node's own command line, so `serve` runs in this one process instead of starting
    // a second node for them (src/cli/respawn.ts): systemd then tracks and signals the server itself.
    // The CPU count is read now, not when the service starts, so the unit says what it decided.
    ...('executable' in o.launcher
      ? [
          // The executable carries its V8 flags (build/exe.ts) and unpacks its native addons into the
          // cache folder systemd makes writable below.
          `ExecStart=${quote(o.launcher.executable)} ${args.map(quote).join(' ')}`,
          'CacheDirectory=proxy',
          'Environment=XDG_CACHE_HOME=/var/cache',
        ]
      : [
          ...(v8Flags.includes(ONE_CPU_GC_FLAG) ? [`# ${ONE_CPU_GC_FLAG}: this machine had one CPU when the unit was written; write it again (--force) after adding CPUs.`] : []),
          `ExecStart=${quote(o.launcher.nodePath)} ${v8Flags.join(' ')} ${quote(o.launcher.proxyBin)} ${args.map(quote).join(' ')}`,
        ]),
    `EnvironmentFile=-${o.envFile}`,
    // systemd copies the file to $CREDENTIALS_DIRECTORY/proxy-master-key, readable by this service only;
    // unlike an environment variable it is not inherited by child processes nor shown by `systemctl show`.
    ...(o.credential ? [`LoadCredential=${CREDENTIAL_NAME}:${o.credential}`] : []),
    // No desktop session on a server: go straight to the key file instead of probing D-Bus. glibc's
    // malloc thresholds as `proxy serve` sets them for the node it starts (respawn.ts); systemd lets
    // the environment file's variables override these.
    `Environment=NODE_ENV=production PROXY_KEYCHAIN=off ${SERVE_ENV_ASSIGNMENTS}`,
    'Restart=on-failure',
    'RestartSec=2',
    'KillSignal=SIGTERM',
    // Longer than the drain deadline, so open streams finish before systemd escalates to SIGKILL.
    `TimeoutStopSec=${o.drainSeconds + 15}`,
    ...(stateDir ? [`StateDirectory=${stateDir}`, 'StateDirectoryMode=0700'] : []),
    `ReadWritePaths=${o.dataDir}`,
    'UMask=0077',
    'LimitNOFILE=65536',
    'NoNewPrivileges=true',
    'ProtectSystem=strict',
    `ProtectHome=${underHome ? 'read-only' : 'true'}`,
    'PrivateTmp=true',
    'PrivateDevices=true',
    'ProtectKernelTunables=true',
    'ProtectKernelModules=true',
    'ProtectKernelLogs=true',
    'ProtectControlGroups=true',
    'ProtectClock=true',
    'ProtectHostname=true',
    'RestrictSUIDSGID=true',
    'RestrictRealtime=true',
    'RestrictNamespaces=true',
    'LockPersonality=true',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'CapabilityBoundingSet=',
    'SystemCallArchitectures=native',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ]
  return lines.join('\n')
}

export function renderEnvFile(): string {
  return [
    '# Environment for the proxy service (mode 0600: it may hold secrets).',
    '# PROXY_MASTER_KEY=            # Fernet key; without it the key file in the data directory is used',
    '# PROXY_REDIS_URL=redis://127.0.0.1:6379',
    '# PROXY_LOG_LEVEL=info',
    '',
  ].join('\n')
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`
}

/** The form of proxy running now: the single executable itself, or this node with the package's bin script. */
export function currentLauncher(): Launcher {
  return isSea() ? { executable: process.execPath } : { nodePath: process.execPath, proxyBin: path.join(packageRoot(), 'bin', 'proxy.js') }
}
