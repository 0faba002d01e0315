/** Runs the built `proxy serve` (node bin/proxy.js) as a child process, as an operator would. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { testEnv } from '../helpers/proxy.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = path.join(root, 'bin/proxy.js')

/** Fails with instructions when dist/ has not been built. */
export function assertBuilt(): void {
  const entry = path.join(root, 'dist/src/cli/main.js')
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run 'npm run build' before this test (it starts real 'node bin/proxy.js serve' processes).`)
}

export interface ServeProcess {
  url: string
  proc: ChildProcess
  output(): string
  stop(): Promise<void>
}

export async function spawnServe(dataDir: string, env: Record<string, string>, args: string[] = []): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', 'warn', '--log-format', 'json', ...args], {
    env: { ...process.env, ...testEnv(dataDir, env) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy serve did not start within 15 s:\n${out}`)), 15_000)
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    proc.stderr!.on('data', onData)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`proxy serve exited with ${code}:\n${out}`))
    })
  })
  return {
    url,
    proc,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
        const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000)
        proc.once('exit', () => {
          clearTimeout(kill)
          resolve()
        })
        proc.kill('SIGTERM')
      }),
  }
}
