/**
 * Keeps the README and docs/ honest: every `proxy …` command line in their shell blocks parses against
 * the real command tree (unknown commands and options, missing arguments and option values fail), and
 * every relative link points at a file that exists and, with an anchor, at one of its headings.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError } from 'commander'
import { describe, expect, it } from 'vitest'
import type { CliDeps } from '../../src/cli/context.js'
import { buildProgram } from '../../src/cli/program.js'
import { anchors, links, proxyCommands, shellWords, slug } from './markdown.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const docFiles = ['README.md', ...readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8')

/** Every command parses and does nothing; errors throw instead of exiting. */
function inert(cmd: Command): void {
  cmd.exitOverride()
  if (cmd.commands.length === 0) cmd.action(() => {})
  for (const sub of cmd.commands) inert(sub)
}

/** Parses `proxy <args>` with the real command tree; the commander message when it does not parse. */
async function parseError(args: string[]): Promise<string | null> {
  const sink = new Writable({ write: (_chunk, _enc, done) => done() })
  const deps: CliDeps = { env: {}, stdin: Readable.from([]), stdout: sink, stderr: sink, keychain: null }
  // a fresh tree per line: commander keeps option values between parses
  const program = buildProgram(deps)
  inert(program)
  try {
    await program.parseAsync(args, { from: 'user' })
    return null
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return null
    return err.code === 'commander.help' ? 'a command group without a subcommand' : err.message
  }
}

describe('the docs', () => {
  it('are the README and the pages of docs/, with proxy commands to check', () => {
    expect(docFiles).toContain('README.md')
    expect(docFiles.length).toBeGreaterThan(5)
    const commands = docFiles.flatMap((f) => proxyCommands(read(f)))
    expect(commands.length).toBeGreaterThan(40)
    expect([...new Set(commands.map((c) => c.args[0]))]).toEqual(expect.arrayContaining(['serve', 'providers', 'keys', 'models', 'clients', 'policy', 'circuit', 'audit', 'usage', 'top', 'doctor', 'service']))
  })

  describe.each(docFiles)('%s', (file) => {
    it('has only proxy command lines that parse', async () => {
      const failures: string[] = []
      for (const cmd of proxyCommands(read(file))) {
        const error = cmd.error ?? (await parseError(cmd.args))
        if (error) failures.push(`${file}:${cmd.line}: ${cmd.text}\n    ${error}`)
      }
      expect(failures.join('\n'), 'commands in the docs that the CLI refuses').toBe('')
    })

    it('has only relative links that resolve, anchors included', () => {
      const failures: string[] = []
      for (const link of links(read(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith('//')) continue
        const [rel, anchor] = link.target.split('#', 2) as [string, string | undefined]
        const target = rel === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(rel)))
        if (!existsSync(path.join(repoRoot, target))) {
          failures.push(`${file}:${link.line}: ${link.target}: ${target} does not exist`)
        } else if (anchor !== undefined && !(target.endsWith('.md') && anchors(read(target)).has(anchor))) {
          failures.push(`${file}:${link.line}: ${link.target}: no heading of ${target} has the anchor #${anchor}`)
        }
      }
      expect(failures.join('\n'), 'links in the docs that lead nowhere').toBe('')
    })
  })
})

describe('the docs checks', () => {
  it('split shell words as a shell does', () => {
    expect(shellWords(`proxy policy set g --file - <p.json 2>/dev/null # a note`)).toEqual([
      { word: 'proxy' }, { word: 'policy' }, { word: 'set' }, { word: 'g' }, { word: '--file' }, { word: '-' },
      { op: '<' }, { word: 'p.json' }, { op: '>' }, { word: '/dev/null' },
    ])
    expect(shellWords(`echo '{"a": 1}' | x "say \\"hi\\"" a\\ b&&y <provider>`)).toEqual([
      { word: 'echo' }, { word: '{"a": 1}' }, { op: '|' }, { word: 'x' }, { word: 'say "hi"' }, { word: 'a b' }, { op: '&&' }, { word: 'y' }, { word: '<provider>' },
    ])
    expect(() => shellWords(`proxy clients add 'oops`)).toThrow(/unclosed single quote/)
  })

  it('find the proxy commands of shell blocks: after pipes and &&, behind sudo and variables, joined across backslashes, only prompted lines in a transcript', () => {
    const doc = [
      '```sh',
      'npm install && npx proxy serve --demo   # a comment',
      'printenv K | sudo -u proxy PROXY_DATA_DIR=/x proxy keys add openai \\',
      '  --label main',
      '# proxy not-a-command',
      '```',
      '```console',
      '$ proxy usage --by model',
      'proxy is listening on a line of output',
      '```',
      '```js',
      'proxy.serve()',
      '```',
    ].join('\n')
    expect(proxyCommands(doc).map((c) => [c.line, c.args])).toEqual([
      [2, ['serve', '--demo']],
      [3, ['keys', 'add', 'openai', '--label', 'main']],
      [8, ['usage', '--by', 'model']],
    ])
  })

  it('refuse a made-up option, an unknown command, a missing argument or option value, and a bad choice', async () => {
    expect(await parseError(['serve', '--demo'])).toBeNull()
    expect(await parseError(['providers', 'add', 'NAME', '--type', 'openai', '--setting', 'k=v'])).toBeNull()
    expect(await parseError(['keys', 'rotate', '<key>', '--provider', 'P'])).toBeNull()
    expect(await parseError(['serve', '--made-up'])).toMatch(/unknown option '--made-up'/)
    expect(await parseError(['providers', 'frobnicate'])).toMatch(/unknown command 'frobnicate'/)
    expect(await parseError(['keys', 'rotate'])).toMatch(/missing required argument 'key'/)
    expect(await parseError(['keys', 'add', 'openai', '--label'])).toMatch(/option '--label <label>' argument missing/)
    expect(await parseError(['providers', 'add', 'x'])).toMatch(/required option '--type <type>' not specified/)
    expect(await parseError(['usage', '--by', 'week'])).toMatch(/Allowed choices are client, model, day/)
    expect(await parseError(['keys'])).toBe('a command group without a subcommand')
  })

  it("give headings GitHub's anchors", () => {
    expect(slug('Several instances: Redis')).toBe('several-instances-redis')
    expect(slug('`proxy top`')).toBe('proxy-top')
    expect(slug('Answer first, account in batches')).toBe('answer-first-account-in-batches')
    expect(slug("undici's own timeouts are off (`src/providers/shared/http.ts`)")).toBe('undicis-own-timeouts-are-off-srcproviderssharedhttpts')
    expect(slug('snake_case and [a link](x.md)')).toBe('snake_case-and-a-link')
    expect([...anchors('# A\n## B\n```sh\n# not a heading\n```\n## B\n')]).toEqual(['a', 'b', 'b-1'])
  })
})
