import { renderToString } from 'ink'
import { AdminApiError, type AdminClient } from '../admin-client.js'
import { CliError, out, printJson, type CliDeps } from '../context.js'
import { Dashboard } from './components/Dashboard.js'
import { DEFAULT_SORTS } from './view-model.js'

/** `proxy top --once`: one report, drawn once with every panel (or printed as JSON), then exit. */
export async function printOnce(deps: CliDeps, client: AdminClient, opts: { json: boolean }): Promise<void> {
  let stats
  try {
    stats = await client.stats()
  } catch (e) {
    throw new CliError(e instanceof AdminApiError ? e.message : String(e))
  }
  if (opts.json) return printJson(deps, stats)
  const columns = (deps.stdout as { columns?: number }).columns || 120
  const frame = renderToString(
    <Dashboard stats={stats} problem={null} target={client.target().describe} columns={columns} rows={Infinity} focused="providers" sorts={DEFAULT_SORTS} paused={false} interactive={false} now={Date.now()} />,
    { columns },
  )
  out(deps, frame)
}
