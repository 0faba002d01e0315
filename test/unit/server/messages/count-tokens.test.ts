import { describe, expect, it } from 'vitest'
import { parseCountTokensRequest } from '../../../../src/core/messages-schema.js'
import { Tokenizer } from '../../../../src/limits/estimate.js'
import { countTokens, estimateMessagesTokens, IMAGE_TOKENS, PDF_PAGE_TOKENS, TOOLS_PROMPT_TOKENS } from '../../../../src/server/messages/count-tokens.js'
import { readTestdata, testdataDir } from '../../../helpers/testdata.js'

/** One "token" a character: the arithmetic of the estimate shows through. */
const chars = (text: string) => text.length
const estimate = (body: Record<string, unknown>) => estimateMessagesTokens(parseCountTokensRequest({ model: 'm', ...body }), chars)

describe('count_tokens estimate', () => {
  it('counts the system prompt, each message with its framing, and tool use in the history', () => {
    expect(estimate({ system: 'abcd', messages: [{ role: 'user', content: 'hello' }] })).toBe(4 + 3 + 5)
    expect(
      estimate({
        system: [{ type: 'text', text: 'ab' }, { type: 'text', text: 'cd' }],
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 'sig' }, { type: 'tool_use', id: 't', name: 'f', input: { a: 1 } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'done' }] }] },
        ],
      }),
    ).toBe(4 + (3 + 2) + (3 + 3 + 1 + '{"a":1}'.length) + (3 + 4))
  })

  it('charges a fixed cost per image and per PDF page', () => {
    const image = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0K' } }
    expect(estimate({ messages: [{ role: 'user', content: [image, { ...image, source: { type: 'url', url: 'https://x/y.png' } }] }] })).toBe(3 + 2 * IMAGE_TOKENS)
    const pdf = Buffer.from('%PDF-1.4 1 0 obj << /Type /Pages /Count 3 >> 2 0 obj << /Type /Page >> 3 0 obj << /Type/Page >> 4 0 obj << /Type /Page >>').toString('base64')
    const doc = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf } }
    expect(estimate({ messages: [{ role: 'user', content: [doc] }] })).toBe(3 + 3 * PDF_PAGE_TOKENS)
  })

  it('counts tool definitions and the tool-use system prompt', () => {
    const schema = { type: 'object', properties: { q: { type: 'string' } } }
    expect(estimate({ messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'find', description: 'Finds', input_schema: schema }] })).toBe(
      3 + 1 + TOOLS_PROMPT_TOKENS + 4 + 5 + JSON.stringify(schema).length,
    )
  })

  it('answers count_tokens with the tokenizer', async () => {
    const tokenizer = new Tokenizer()
    const answer = await countTokens(parseCountTokensRequest({ model: 'm', messages: [{ role: 'user', content: 'Hello, world' }] }), tokenizer)
    expect(tokenizer.ready).toBe(true)
    // "Hello, world" is 3 cl100k tokens, plus the message's framing
    expect(answer).toEqual({ input_tokens: 6 })
  })

  it.skipIf(!testdataDir)('estimates a Claude Code request near its size in tokens', async () => {
    const { body } = (JSON.parse(readTestdata('agents/claude-code.json')) as Array<{ body: Record<string, unknown> }>)[0]!
    const { input_tokens } = await countTokens(parseCountTokensRequest(body), new Tokenizer())
    // 87 kB of English text, schemas and markup: about a quarter as many tokens
    expect(input_tokens).toBeGreaterThan(15_000)
    expect(input_tokens).toBeLessThan(30_000)
  })
})
