import { render } from 'ink'
import type { AdminClient } from '../admin-client.js'
import type { CliDeps } from '../context.js'
import { TopApp } from './app.js'

const ENTER_ALT_SCREEN = '\x1b[?1049h\x1b[H'
const LEAVE_ALT_SCREEN = '\x1b[?1049l'

/** The live dashboard on the terminal's alternate screen (as top does), until q or Ctrl+C. */
export async function runTop(deps: CliDeps, client: AdminClient, intervalMs: number): Promise<void> {
  const stdout = deps.stdout as NodeJS.WriteStream
  stdout.write(ENTER_ALT_SCREEN)
  try {
    const app = render(<TopApp source={client.stats} target={() => client.target().describe} intervalMs={intervalMs} />, {
      stdout,
      stdin: deps.stdin as NodeJS.ReadStream,
      stderr: deps.stderr as NodeJS.WriteStream,
      exitOnCtrlC: true,
      patchConsole: false,
    })
    await app.waitUntilExit()
  } finally {
    stdout.write(LEAVE_ALT_SCREEN)
  }
}
