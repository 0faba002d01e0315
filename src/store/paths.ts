import { homedir } from 'node:os'
import path from 'node:path'

export type Env = Record<string, string | undefined>

/** Flag > PROXY_DATA_DIR > $XDG_DATA_HOME/proxy > ~/.local/share/proxy (DESIGN.md, Configuration). */
export function resolveDataDir(flag: string | undefined, env: Env): string {
  const chosen = flag ?? env.PROXY_DATA_DIR
  if (chosen) return path.resolve(chosen)
  const xdg = env.XDG_DATA_HOME || path.join(env.HOME || homedir(), '.local', 'share')
  return path.join(xdg, 'proxy')
}

export const STORE_FILE = 'proxy.db'

/** The systemd credential that carries the master key (`LoadCredential=proxy-master-key:PATH`). */
export const CREDENTIAL_NAME = 'proxy-master-key'
