/**
 * An estimate of a Messages body's input tokens: the answer to `POST /v1/messages/count_tokens` when the
 * provider cannot count natively, and the input part of a limit reservation. Text is counted with the
 * project's tokenizer (cl100k_base: close to, and usually a little above, Claude's count). What it
 * cannot read is charged a fixed cost:
 * - an image: 1,600 tokens, Anthropic's cost of the largest image it accepts without shrinking it
 *   (about 1.15 megapixels at width × height / 750); smaller images cost less, so this is an upper bound;
 * - a PDF: 2,000 tokens a page (Anthropic charges the page's text plus the page as an image, 1,500-3,000),
 *   with the pages counted in the file;
 * - tool definitions: their name, description and JSON schema as text, plus the 346 tokens of the system
 *   prompt Anthropic adds when tools are given.
 */
import type { ContentBlockParam, CountTokensRequest, ToolResultContentParam } from '../../core/messages-schema.js'
import type { Tokenizer } from '../../limits/estimate.js'

type CountFn = (text: string) => number

export const IMAGE_TOKENS = 1600
export const PDF_PAGE_TOKENS = 2000
export const TOOLS_PROMPT_TOKENS = 346
/** framing per message (role and separators), as for chat */
const MESSAGE_TOKENS = 3
/** count_tokens is a number the client shows: count more of it exactly than a limit estimate does */
const COUNT_BUDGET_CHARS = 200_000

/** The count_tokens answer, from the tokenizer (loaded first when it is not yet). */
export async function countTokens(req: CountTokensRequest, tokenizer: Tokenizer): Promise<{ input_tokens: number }> {
  await tokenizer.load()
  return { input_tokens: estimateMessagesTokens(req, tokenizer.counter(COUNT_BUDGET_CHARS)) }
}

export function estimateMessagesTokens(req: CountTokensRequest, count: CountFn): number {
  let n = 0
  if (typeof req.system === 'string') n += count(req.system)
  else for (const block of req.system ?? []) n += count(block.text)
  for (const m of req.messages) {
    n += MESSAGE_TOKENS
    if (typeof m.content === 'string') n += count(m.content)
    else for (const block of m.content) n += blockTokens(block, count)
  }
  const tools = req.tools ?? []
  if (tools.length > 0) n += TOOLS_PROMPT_TOKENS
  for (const tool of tools) {
    // a custom tool is its schema; a tool Anthropic defines (no schema) is described by its settings
    n += count(tool.name) + count(tool.description ?? '') + count(JSON.stringify(tool.input_schema ?? tool))
  }
  return Math.max(1, n)
}

function blockTokens(block: ContentBlockParam | ToolResultContentParam, count: CountFn): number {
  switch (block.type) {
    case 'text':
      return count(block.text)
    case 'image':
      return IMAGE_TOKENS
    case 'document': {
      const source = block.source
      const heading = count(block.title ?? '') + count(block.context ?? '')
      if (source.type === 'text') return heading + count(source.data)
      if (source.type === 'content') {
        return heading + (typeof source.content === 'string' ? count(source.content) : source.content.reduce((sum, b) => sum + blockTokens(b, count), 0))
      }
      if (source.type === 'base64') return heading + pdfPages(source.data) * PDF_PAGE_TOKENS
      return heading + PDF_PAGE_TOKENS
    }
    case 'search_result':
      return count(block.title) + count(block.source) + block.content.reduce((sum, b) => sum + count(b.text), 0)
    case 'tool_use':
      return count(block.name) + count(JSON.stringify(block.input))
    case 'tool_result':
      if (typeof block.content === 'string') return count(block.content)
      return (block.content ?? []).reduce((sum, b) => sum + blockTokens(b, count), 0)
    case 'tool_reference':
      return count(block.tool_name)
    case 'thinking':
      return count(block.thinking)
    case 'redacted_thinking':
      return count(block.data)
    default:
      // a block this proxy does not read: its JSON is the best guess there is
      return count(JSON.stringify(block))
  }
}

/** The pages of a base64 PDF: its page objects (`/Type /Page`, not `/Pages`), at least one. */
function pdfPages(base64: string): number {
  const text = Buffer.from(base64, 'base64').toString('latin1')
  return Math.max(1, text.match(/\/Type\s*\/Page(?![a-zA-Z])/g)?.length ?? 0)
}
