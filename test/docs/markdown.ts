/**
 * Just enough Markdown and shell reading to check the docs: fenced code blocks, the `proxy` command
 * lines in them, relative links, and the anchors GitHub gives headings.
 */

/** A fenced code block: its language and its lines, each with its 1-based line number in the file. */
export interface CodeBlock {
  lang: string
  lines: Array<{ n: number; text: string }>
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/

/** The fenced code blocks of a document, and the lines outside them (prose, headings, tables). */
export function splitMarkdown(text: string): { blocks: CodeBlock[]; prose: Array<{ n: number; text: string }> } {
  const blocks: CodeBlock[] = []
  const prose: Array<{ n: number; text: string }> = []
  let open: { fence: string; block: CodeBlock } | null = null
  text.split('\n').forEach((line, i) => {
    const n = i + 1
    const fence = FENCE.exec(line)
    if (open) {
      // a closing fence: the same character, at least as long, nothing after it
      if (fence && fence[1]![0] === open.fence[0] && fence[1]!.length >= open.fence.length && line.trim() === fence[1]) open = null
      else open.block.lines.push({ n, text: line })
    } else if (fence) {
      open = { fence: fence[1]!, block: { lang: fence[2]!.toLowerCase(), lines: [] } }
      blocks.push(open.block)
    } else {
      prose.push({ n, text: line })
    }
  })
  return { blocks, prose }
}

/** Languages whose blocks hold shell commands (or their transcripts); no language counts too. */
const SHELL_LANGS = new Set(['', 'sh', 'bash', 'shell', 'console', 'text'])

/**
 * Splits a shell line into words and operators, as a POSIX shell would for the simple lines docs
 * hold: single quotes keep everything, double quotes keep all but `\"` and `\\`, a backslash outside
 * quotes escapes the next character, an unquoted `#` at the start of a word begins a comment, and
 * `|`, `||`, `&&`, `;`, `<`, `>`, `>>` outside quotes are operators of their own.
 */
export function shellWords(line: string): Array<{ word: string } | { op: string }> {
  const out: Array<{ word: string } | { op: string }> = []
  let word: string | null = null
  const flush = () => {
    if (word !== null) out.push({ word })
    word = null
  }
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end === -1) throw new Error(`unclosed single quote in: ${line}`)
      word = (word ?? '') + line.slice(i + 1, end)
      i = end
    } else if (c === '"') {
      let value = ''
      let j = i + 1
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\')) j++
        value += line[j]
      }
      if (j >= line.length) throw new Error(`unclosed double quote in: ${line}`)
      word = (word ?? '') + value
      i = j
    } else if (c === '\\') {
      word = (word ?? '') + (line[i + 1] ?? '')
      i++
    } else if (c === ' ' || c === '\t') {
      flush()
    } else if (c === '#' && word === null) {
      break
    } else if (c === '<' && /^<[^\s<>]+>/.test(line.slice(i))) {
      // a placeholder such as <provider>, not a redirection
      const end = line.indexOf('>', i)
      word = (word ?? '') + line.slice(i, end + 1)
      i = end
    } else if ('|&;<>'.includes(c)) {
      const two = line.slice(i, i + 2)
      const op = two === '||' || two === '&&' || two === '>>' ? two : c
      // a lone '&' (background) is an operator too; '2>' is a redirection of stderr
      if (op === '>' && word === '2') word = null
      flush()
      out.push({ op })
      i += op.length - 1
    } else {
      word = (word ?? '') + c
    }
  }
  flush()
  return out
}

/** A `proxy` command found in a code block: where it is, and its arguments after `proxy`. */
export interface ProxyCommand {
  line: number
  text: string
  args: string[]
  /** why the line could not be split into words (an unclosed quote) */
  error?: string
}

/** Whether a line that could not be split looks like it runs `proxy`, so its error is reported. */
const LOOKS_LIKE_PROXY = /(^|[|&;]\s*)(sudo\s+(-u\s+\S+\s+)?)?([A-Za-z_]\w*=\S*\s+)*(npx\s+)?proxy(\s|$)/

/** Shell words before the command that do not change which command runs. */
function commandStart(words: string[]): string[] {
  let i = 0
  for (;;) {
    if (words[i] === 'sudo') {
      i++
      if (words[i] === '-u') i += 2
    } else if (words[i] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!)) {
      i++
    } else {
      return words.slice(i)
    }
  }
}

/**
 * The `proxy` commands of a document's shell blocks. In a block with `$ ` prompts only the prompted
 * lines are commands (the rest is their output); otherwise every line is. Lines ending in a backslash
 * continue on the next. Each simple command of a line (split at `|`, `||`, `&&`, `;`) that runs
 * `proxy` or `npx proxy` counts, after any `VAR=value` assignments and `sudo [-u USER]`; redirections
 * are left out.
 */
export function proxyCommands(text: string): ProxyCommand[] {
  const found: ProxyCommand[] = []
  for (const block of splitMarkdown(text).blocks) {
    if (!SHELL_LANGS.has(block.lang)) continue
    const prompted = block.lines.some((l) => l.text.startsWith('$ '))
    for (let i = 0; i < block.lines.length; i++) {
      const first = block.lines[i]!
      let text = first.text
      while (text.endsWith('\\') && i + 1 < block.lines.length) text = text.slice(0, -1) + ' ' + block.lines[++i]!.text
      if (prompted) {
        if (!text.startsWith('$ ')) continue
        text = text.slice(2)
      }
      let tokens: ReturnType<typeof shellWords>
      try {
        tokens = shellWords(text)
      } catch (err) {
        if (LOOKS_LIKE_PROXY.test(text.trim())) found.push({ line: first.n, text: text.trim(), args: [], error: (err as Error).message })
        continue
      }
      let segment: string[] = []
      const segments: string[][] = [segment]
      let redirect = false
      for (const token of tokens) {
        if ('op' in token) {
          if (token.op === '<' || token.op === '>' || token.op === '>>') redirect = true
          else segments.push((segment = []))
        } else if (redirect) {
          redirect = false
        } else {
          segment.push(token.word)
        }
      }
      for (const words of segments) {
        const cmd = commandStart(words)
        const args = cmd[0] === 'proxy' ? cmd.slice(1) : cmd[0] === 'npx' && cmd[1] === 'proxy' ? cmd.slice(2) : null
        if (args) found.push({ line: first.n, text: text.trim(), args })
      }
    }
  }
  return found
}

/** A link in a document's prose, with its line. */
export interface Link {
  line: number
  target: string
}

/** Inline links and reference definitions outside code (fenced blocks and inline code spans). */
export function links(text: string): Link[] {
  const out: Link[] = []
  for (const { n, text: line } of splitMarkdown(text).prose) {
    const spans: Array<[number, number]> = []
    for (const m of line.matchAll(/(`+)[^`]*?\1/g)) spans.push([m.index, m.index + m[0].length])
    const inCode = (at: number) => spans.some(([a, b]) => at >= a && at < b)
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      if (!inCode(m.index)) out.push({ line: n, target: m[1]! })
    }
    const ref = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line)
    if (ref) out.push({ line: n, target: ref[1]! })
  }
  return out
}

/** GitHub's anchor for a heading's text: lowercase, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link shows its text
    .replace(/<[^>]+>/g, '') // HTML tags
    .replace(/[`*]/g, '') // code and emphasis marks
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

/** The anchors of a document's headings, numbered as GitHub numbers repeats (`x`, `x-1`, `x-2`). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const { text: line } of splitMarkdown(text).prose) {
    const h = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)
    if (!h) continue
    const base = slug(h[1]!)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    out.add(count === 0 ? base : `${base}-${count}`)
  }
  return out
}
