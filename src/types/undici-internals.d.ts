/** The one undici module imported by path (src/server/undici-agent.ts): its module.exports is the Agent class. */
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici'
  const AgentClass: typeof Agent
  export default AgentClass
}
