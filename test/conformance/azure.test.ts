import { startFakeAzure } from '../fakes/azure-upstream.js'
import { describeProvider } from './provider-suite.js'

describeProvider({ type: 'azure', start: () => startFakeAzure() })
