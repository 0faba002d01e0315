import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package's root folder, found by walking up: the same code runs from src/ (tests) and dist/src/ (built). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (dir !== path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'bin', 'proxy.js'))) return dir
    dir = path.dirname(dir)
  }
  throw new Error('cannot find the proxy package root')
}

/** The version in the package's package.json (the executable's build replaces this module: build/sea/). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
}
