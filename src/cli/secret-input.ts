import { createInterface } from 'node:readline'
import { CliError, type CliDeps } from './context.js'

/**
 * Reads a secret without it ever touching argv (which leaks into shell history and `ps`):
 * from a named environment variable, a hidden prompt on a terminal, or piped stdin.
 */
export async function readSecret(deps: CliDeps, opts: { fromEnv?: string; prompt: string }): Promise<string> {
  if (opts.fromEnv) {
    const value = deps.env[opts.fromEnv]
    if (!value) throw new CliError(`Environment variable ${opts.fromEnv} is not set or empty.`)
    return value.trim()
  }
  const secret = deps.stdin.isTTY ? await promptHidden(deps, opts.prompt) : await readAll(deps.stdin)
  if (!secret.trim()) {
    throw new CliError(`No secret given. Pipe it in (e.g. 'printenv OPENAI_API_KEY | proxy keys add openai'), type it at the prompt, or use --from-env VAR.`)
  }
  return secret.trim()
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = ''
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
  return text
}

function promptHidden(deps: CliDeps, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: deps.stdin, output: deps.stderr, terminal: true })
    // Echo nothing after the prompt: the secret must not appear on screen or in scrollback.
    const write = (rl as unknown as { _writeToOutput: (s: string) => void })
    let prompted = false
    write._writeToOutput = (s: string) => {
      if (!prompted) {
        deps.stderr.write(s)
        prompted = true
      }
    }
    rl.question(prompt, (answer) => {
      rl.close()
      deps.stderr.write('\n')
      resolve(answer)
    })
    rl.on('SIGINT', () => {
      rl.close()
      reject(new CliError('Cancelled.', 130))
    })
  })
}
