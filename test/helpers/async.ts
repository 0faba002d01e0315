import { expect } from 'vitest'
import { ProxyError } from '../../src/core/errors.js'

/** Everything an async iterable yields, in order. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of stream) out.push(item)
  return out
}

/** The ProxyError `run` rejects with; fails the test when it resolves or throws anything else. */
export async function proxyErrorOf(run: () => Promise<unknown>): Promise<ProxyError> {
  try {
    await run()
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError)
    return err as ProxyError
  }
  throw new Error('expected a ProxyError')
}
