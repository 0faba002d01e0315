/**
 * What a run recorded by record-loads.mjs loaded, as sources. bin/proxy.js runs the bundle
 * (build/bundle.ts), whose metafile says which sources each of its files holds. A source of ours is
 * named as tsc builds it (`…/dist/src/cli/keys.js`), a package's file by its path in node_modules, so
 * a check reads the same whether a module came from the bundle or from node_modules.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BUNDLE_META } from '../../build/bundle.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export function loadedSources(recordFile: string): string[] {
  const meta = JSON.parse(readFileSync(BUNDLE_META, 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> }
  const out = new Set<string>()
  for (const line of readFileSync(recordFile, 'utf8').split('\n').filter(Boolean)) {
    const file = line.startsWith('file:') ? fileURLToPath(line) : line
    const output = meta.outputs[path.relative(repoRoot, file)]
    if (!output) {
      out.add(file)
      continue
    }
    for (const input of Object.keys(output.inputs)) out.add(input.startsWith('src/') ? path.join(repoRoot, 'dist', input.replace(/\.tsx?$/, '.js')) : path.join(repoRoot, input))
  }
  return [...out]
}
