/**
 * Anthropic thinking blocks carried through a client as a reasoning item's `encrypted_content`.
 *
 * A Responses client sends reasoning items back on the next turn, and Anthropic wants each thinking
 * block back unchanged, signature included. This proxy puts the blocks in `encrypted_content` as
 * `proxy-thinking.v1:` + base64url(JSON of the ThinkingBlock list). It is not encrypted: the thinking
 * text is already in the item's summary, and the signature is Anthropic's own tamper check. Content
 * without the prefix (OpenAI's real encrypted reasoning, after a fallback) cannot be read and is dropped.
 * Every reasoning item this proxy makes carries the prefix (an empty list when there were no blocks), so
 * that a native call to OpenAI, which could not decrypt it, can leave those items out.
 */
import type { ThinkingBlock } from '../../core/reasoning.js'

const PREFIX = 'proxy-thinking.v1:'

export function encodeThinking(blocks: readonly ThinkingBlock[]): string {
  return PREFIX + Buffer.from(JSON.stringify(blocks)).toString('base64url')
}

/** True when the content was made by this proxy (and so must not be sent to OpenAI as its own). */
export function isProxyThinking(encrypted: string): boolean {
  return encrypted.startsWith(PREFIX)
}

/** Input items fit for OpenAI itself: the reasoning items this proxy made are left out (OpenAI would refuse them). */
export function withoutProxyReasoning<T>(items: readonly T[]): T[] {
  const ours = (item: T) => {
    const { type, encrypted_content } = item as { type?: unknown; encrypted_content?: unknown }
    return type === 'reasoning' && typeof encrypted_content === 'string' && isProxyThinking(encrypted_content)
  }
  // the same list when there is nothing to drop, so the request's own bytes still stand for it (core/request-bytes.ts)
  return items.some(ours) ? items.filter((item) => !ours(item)) : (items as T[])
}

/** The blocks, or null when the content is not ours or not well formed. */
export function decodeThinking(encrypted: string): ThinkingBlock[] | null {
  if (!isProxyThinking(encrypted)) return null
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(encrypted.slice(PREFIX.length), 'base64url').toString('utf8'))
  } catch {
    return null
  }
  return Array.isArray(value) && value.every(isThinkingBlock) ? value : null
}

function isThinkingBlock(b: unknown): b is ThinkingBlock {
  if (!b || typeof b !== 'object') return false
  const block = b as Record<string, unknown>
  if (block.type === 'thinking') return typeof block.thinking === 'string' && typeof block.signature === 'string'
  return block.type === 'redacted_thinking' && typeof block.data === 'string'
}
