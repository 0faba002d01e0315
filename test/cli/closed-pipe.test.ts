import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'proxy.js')

// `proxy … | head`: the reader goes away before the output is written.
it('a command whose reader has closed the pipe ends quietly with its own exit code', async () => {
  const child = spawn(process.execPath, [bin, 'completion', 'bash'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PROXY_KEYCHAIN: 'off' } })
  child.stdout.destroy()
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  expect(stderr).not.toMatch(/EPIPE|Unhandled/)
  expect(code).toBe(0)
})
