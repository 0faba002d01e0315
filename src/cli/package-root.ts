import { existsSync } from 'node:fs'
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
