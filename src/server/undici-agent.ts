/**
 * undici's Agent, imported from its own module rather than the package's index. The index loads all of
 * undici (fetch, WebSocket, caches, mocks) to hand out this one class: 730 KB that `proxy serve` parsed
 * at every start, against 350 KB for the Agent and what it uses. undici is pinned; the test
 * test/unit/server/undici-agent.test.ts fails when a release moves the class or makes it another.
 */
import type { Agent as UndiciAgent } from 'undici'
import AgentClass from 'undici/lib/dispatcher/agent.js'

export const Agent: typeof UndiciAgent = AgentClass
