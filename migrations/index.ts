import type { Migration } from 'kysely'
import * as m0001 from './0001_init.js'

/** Every migration, in order. Bundled in code so the CLI never depends on reading a folder at run time. */
export const migrations: Record<string, Migration> = {
  '0001_init': m0001,
}
