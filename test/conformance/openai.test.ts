import { startOpenAIProvider } from '../fakes/openai-upstream.js'
import { describeProvider } from './provider-suite.js'

describeProvider({ type: 'openai', start: startOpenAIProvider })
