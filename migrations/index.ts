import type { Migration } from 'kysely'
import * as m0001 from './0001_init.js'
import * as m0002 from './0002_observability.js'
import * as m0003 from './0003_resilience.js'
import * as m0004 from './0004_limits.js'
import * as m0005 from './0005_config_version.js'
import * as m0006 from './0006_responses.js'
import * as m0007 from './0007_cache.js'
import * as m0008 from './0008_trace_id.js'
import * as m0009 from './0009_capture_objects.js'
import * as m0010 from './0010_spend.js'
import * as m0011 from './0011_spend_config_triggers.js'

/** Every migration, in order. Bundled in code so the CLI never depends on reading a folder at run time. */
export const migrations: Record<string, Migration> = {
  '0001_init': m0001,
  '0002_observability': m0002,
  '0003_resilience': m0003,
  '0004_limits': m0004,
  '0005_config_version': m0005,
  '0006_responses': m0006,
  '0007_cache': m0007,
  '0008_trace_id': m0008,
  '0009_capture_objects': m0009,
  '0010_spend': m0010,
  '0011_spend_config_triggers': m0011,
}
