// Preloaded with `node --import` by the CLI load tests: records every module the process loads (ES
// modules through a resolve hook, CommonJS ones from require.cache at exit) into $PROXY_RECORD_LOADS.
import { appendFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'

const file = process.env.PROXY_RECORD_LOADS
if (file) {
  register('./record-loads-hooks.mjs', import.meta.url)
  const cache = createRequire(import.meta.url).cache
  process.on('exit', () => appendFileSync(file, Object.keys(cache).join('\n') + '\n'))
}
