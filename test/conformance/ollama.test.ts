import { startFakeOllama } from '../fakes/ollama-upstream.js'
import { describeProvider } from './provider-suite.js'

describeProvider({ type: 'ollama', start: () => startFakeOllama() })
