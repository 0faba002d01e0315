/** Kysely queries compiled on the server's thread, for the store writer to run (store/audit-batch.js). */
import type { Compilable } from 'kysely'
import type { WriteStatement } from '../audit-batch.js'

/** `skipOnConstraint`: a broken constraint (its row's parent was deleted meanwhile) skips the statement. */
export function writeStatement(query: Compilable, skipOnConstraint = false): WriteStatement {
  const { sql, parameters } = query.compile()
  return skipOnConstraint ? { sql, parameters, skipOnConstraint } : { sql, parameters }
}
