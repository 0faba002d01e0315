/** `proxy completion`: scripts made from the real command tree, that the shells accept and that complete. */
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { buildProgram } from '../../src/cli/program.js'
import { cli, cliOk, tempDataDir } from '../helpers/proxy.js'

const data = tempDataDir()
afterAll(() => data.cleanup())

const script = async (shell: string) => (await cliOk(data.dir, ['completion', shell])).stdout
const hasShell = (shell: string) => spawnSync(shell, ['-c', 'exit 0']).status === 0

/** Runs the bash completion function on a command line whose last word is being typed. */
function bashComplete(file: string, line: string[]): string[] {
  const words = line.map((w) => `'${w}'`).join(' ')
  const r = spawnSync('bash', ['-c', `source '${file}'; COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _proxy; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
  expect(r.stderr).toBe('')
  return r.stdout.split('\n').filter(Boolean)
}

describe('proxy completion', () => {
  it('bash: names every top-level command and the options of subcommands, and bash -n accepts it', async () => {
    const text = await script('bash')
    const program = buildProgram({ env: {}, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
    expect(program.commands.length).toBeGreaterThan(10)
    const top = /^ {4}'proxy'\) echo '([^']*)'/m.exec(text)![1]!.split(' ')
    for (const cmd of program.commands) expect(top).toContain(cmd.name())
    expect(/^ {4}'proxy providers set'\) echo '([^']*)'/m.exec(text)![1]!.split(' ')).toContain('--base-url')
    const file = path.join(data.dir, 'proxy.bash')
    writeFileSync(file, text)
    expect(spawnSync('bash', ['-n', file], { encoding: 'utf8' }).status).toBe(0)
  })

  it('bash: completes commands, subcommands, options and option choices', async () => {
    const file = path.join(data.dir, 'proxy-complete.bash')
    writeFileSync(file, await script('bash'))
    expect(bashComplete(file, ['proxy', 'pro'])).toEqual(['providers'])
    expect(bashComplete(file, ['proxy', 'providers', ''])).toEqual(['add', 'set', 'ls', 'rm', 'test', '--help'])
    expect(bashComplete(file, ['proxy', 'providers', 'set', 'local', '--setting', 'a=1', '--ba'])).toEqual(['--base-url'])
    expect(bashComplete(file, ['proxy', 'providers', 'add', 'x', '--type', 'open'])).toEqual(['openai', 'openai-compatible'])
    expect(bashComplete(file, ['proxy', 'keys', 'ls', '--'])).toContain('--provider')
  })

  it.skipIf(!hasShell('zsh'))('zsh -n accepts the zsh script', async () => {
    const file = path.join(data.dir, 'proxy.zsh')
    writeFileSync(file, await script('zsh'))
    expect(spawnSync('zsh', ['-n', file], { encoding: 'utf8' }).status).toBe(0)
  })

  it.skipIf(!hasShell('fish'))('fish -n accepts the fish script', async () => {
    const file = path.join(data.dir, 'proxy.fish')
    writeFileSync(file, await script('fish'))
    expect(spawnSync('fish', ['-n', file], { encoding: 'utf8' }).status).toBe(0)
  })

  it('zsh and fish scripts name the same commands and options', async () => {
    const [zsh, fish] = [await script('zsh'), await script('fish')]
    expect(zsh).toContain('compdef _proxy proxy')
    expect(zsh).toContain("'proxy providers set') echo '")
    expect(fish).toContain(`complete -c proxy -n 'test (__proxy_path) = "proxy providers set"' -l base-url -r -d`)
    expect(fish).toContain(`-n 'test (__proxy_path) = "proxy providers add"' -l type -x -a 'openai openai-compatible anthropic azure ollama mock'`)
  })

  it('refuses a shell it does not know', async () => {
    const r = await cli(data.dir, ['completion', 'powershell'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('bash, zsh, fish')
  })
})
