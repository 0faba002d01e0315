/** Which node versions run an executable with the SEA configuration's execArgv, so its code cache is made with those flags. */
import { describe, expect, it } from 'vitest'
import { seaAppliesExecArgv } from '../../build/exe.js'

describe('seaAppliesExecArgv', () => {
  it('is true from node 22.20 and 24.7 on', () => {
    for (const version of ['22.20.0', '22.21.1', '24.7.0', '24.11.0', '25.0.0', '26.1.0']) expect(seaAppliesExecArgv(version), version).toBe(true)
  })
  it('is false before', () => {
    for (const version of ['20.20.2', '22.19.0', '23.11.0', '24.6.0']) expect(seaAppliesExecArgv(version), version).toBe(false)
  })
})
