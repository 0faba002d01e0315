/**
 * The shared test data (provider transcripts, Fernet vectors, OpenAI's spec) lives outside this repo,
 * next to it by default. On a developer's clone without it, suites that need it skip with a warning;
 * in CI (`CI` set) its absence fails them instead, so those tests can never pass by not running.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { it } from 'vitest'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Where the lookup went, for skip messages. */
export const testdataLocation: string = path.resolve(
  process.env.PROXY_TESTDATA ?? path.join(repoRoot, '..', 'shared', 'testdata'),
)

export const testdataDir: string | null =
  existsSync(testdataLocation) && statSync(testdataLocation).isDirectory() ? testdataLocation : null

const missing = `shared test data not found at ${testdataLocation} (put it there or set PROXY_TESTDATA to its location)`

/** Whether this run is CI: `CI` set to anything but an empty string, 0 or false. */
const inCI = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase())

/**
 * Whether the tests of `what` must skip because the shared test data is missing. Call it where those
 * tests are declared (top level or inside their describe). On a developer's clone it warns and says
 * skip; in CI it declares one failing test with the reason, and the rest still skip.
 */
export function skipWithoutTestdata(what: string): boolean {
  if (testdataDir !== null) return false
  if (inCI) {
    it(`has the shared test data for ${what}`, () => {
      throw new Error(`${missing}; CI must run ${what}, not skip them`)
    })
  } else {
    console.warn(`skipping ${what}: ${missing}`)
  }
  return true
}

export function readTestdata(rel: string): string {
  if (testdataDir === null) throw new Error(missing)
  return readFileSync(path.join(testdataDir, rel), 'utf8')
}
