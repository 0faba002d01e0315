/**
 * The shared test data (provider transcripts, Fernet vectors) lives outside this repo, next to
 * it by default. Suites that need it skip, with a warning, when it is not there.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Where the lookup went, for skip messages. */
export const testdataLocation: string = path.resolve(
  process.env.PROXY_TESTDATA ?? path.join(repoRoot, '..', 'shared', 'testdata'),
)

export const testdataDir: string | null =
  existsSync(testdataLocation) && statSync(testdataLocation).isDirectory() ? testdataLocation : null

export function readTestdata(rel: string): string {
  if (testdataDir === null) {
    throw new Error(`shared test data not found at ${testdataLocation} (set PROXY_TESTDATA to its location)`)
  }
  return readFileSync(path.join(testdataDir, rel), 'utf8')
}
