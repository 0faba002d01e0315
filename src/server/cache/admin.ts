/** The admin API of the response cache: GET /admin/v1/cache (figures), DELETE /admin/v1/cache[?model=M]. */
import { invalidRequest } from '../../core/errors.js'
import type { AdminEndpoint } from '../admin/handlers.js'
import type { ResponseCache } from './response-cache.js'

export function cacheEndpoints(cache: ResponseCache): AdminEndpoint[] {
  return [
    { method: 'GET', path: '/cache', run: () => cache.stats() },
    {
      method: 'DELETE',
      path: '/cache',
      action: 'cache.clear',
      async run(call) {
        const model = call.query.get('model')
        if (model === '') throw invalidRequest('model must name a model, or be left out to clear every answer.', 'model', 'invalid_value')
        const cleared = await cache.clear(model ?? undefined)
        return { cleared, model: model ?? null }
      },
    },
  ]
}
