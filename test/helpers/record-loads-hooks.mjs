// The resolve hook of record-loads.mjs; it runs on the loader thread, so it appends to the file itself.
import { appendFileSync } from 'node:fs'

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  appendFileSync(process.env.PROXY_RECORD_LOADS, resolved.url + '\n')
  return resolved
}
