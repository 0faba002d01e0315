/**
 * The audit trail in the admin API: GET /audit/:requestId answers every row recorded for a request id,
 * as `proxy audit show --json` does, with bodies kept in the capture store read back in place.
 */
import { withCapturedBodies } from '../../store/capture-objects.js'
import type { Store } from '../../store/db.js'
import type { ObjectStore } from '../../store/object-store.js'
import { getAudit } from '../../store/repos/audit.js'
import type { AdminEndpoint } from './handlers.js'

export function auditEndpoints(store: Store, captureStore: ObjectStore | null): AdminEndpoint[] {
  return [
    {
      method: 'GET',
      path: '/audit/:requestId',
      async run(call) {
        const rows = await getAudit(store.db, decodeURIComponent(call.params.requestId!))
        return { object: 'list', data: await withCapturedBodies(rows, captureStore) }
      },
    },
  ]
}
