import { describe, expect, it } from 'vitest'
import type { Dispatcher } from 'undici'
import { UpstreamBody } from '../../../src/providers/shared/upstream-body.js'

/** A stand-in for undici's dispatch controller that records what the body asked of it. */
function fakeController() {
  const calls: string[] = []
  let abortReason: unknown = null
  const controller = {
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    abort: (reason: unknown) => {
      calls.push('abort')
      abortReason = reason
    },
  } as unknown as Dispatcher.DispatchController
  return { controller, calls, reason: () => abortReason }
}

const chunk = (text: string) => Buffer.from(text)

describe('UpstreamBody', () => {
  it('hands chunks over in order, pushed before or after the read, then ends', async () => {
    const body = new UpstreamBody()
    body.attach(fakeController().controller)
    body.push(chunk('a'))
    const pending = body.next()
    body.push(chunk('b'))
    body.end()
    expect((await pending).value?.toString()).toBe('a')
    const rest: string[] = []
    for await (const c of body) rest.push(c.toString())
    expect(rest).toEqual(['b'])
    expect(body.readableEnded).toBe(true)
  })

  it('pauses the upstream past 16 unread chunks and resumes once the reader caught up', async () => {
    const fake = fakeController()
    const body = new UpstreamBody()
    body.attach(fake.controller)
    for (let i = 0; i < 20; i++) body.push(chunk(String(i)))
    expect(fake.calls).toEqual(['pause'])
    for (let i = 0; i < 12; i++) await body.next()
    expect(fake.calls).toEqual(['pause']) // 8 unread: not yet
    await body.next()
    expect(fake.calls).toEqual(['pause', 'resume'])
  })

  it('delivers what was read before a failure, then the error', async () => {
    const body = new UpstreamBody()
    body.attach(fakeController().controller)
    body.push(chunk('x'))
    body.fail(new Error('socket reset'))
    expect((await body.next()).value?.toString()).toBe('x')
    await expect(body.next()).rejects.toThrow('socket reset')
  })

  it('a reader leaving early drains the rest (the connection is reused) but aborts past 64 KiB', () => {
    const fake = fakeController()
    const body = new UpstreamBody()
    body.attach(fake.controller)
    body.release()
    body.push(Buffer.alloc(1024))
    expect(fake.calls).toEqual([])
    body.push(Buffer.alloc(64 * 1024))
    expect(fake.calls).toEqual(['abort'])
    expect((fake.reason() as Error).name).toBe('AbortError')
  })

  it('leaving a finished body aborts nothing; destroy() aborts a running one', () => {
    const fake = fakeController()
    const done = new UpstreamBody()
    done.attach(fake.controller)
    done.end()
    done.release()
    done.destroy()
    expect(fake.calls).toEqual([])

    const running = new UpstreamBody()
    running.attach(fake.controller)
    running.destroy()
    expect(fake.calls).toEqual(['abort'])
  })

  it('reads the rest as text', async () => {
    const body = new UpstreamBody()
    body.attach(fakeController().controller)
    body.push(chunk('{"a":'))
    body.push(chunk('1}'))
    body.end()
    expect(await body.text()).toBe('{"a":1}')
  })
})
