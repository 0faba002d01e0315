/**
 * What the mock provider answers besides text, all deterministic (equal requests, equal answers): a call
 * to one of the request's tools, with arguments built from the tool's JSON schema, and "thinking" when the
 * request asks for reasoning, with a fake signature, so agents and translators can be driven end to end
 * without a model.
 */
import { createHash } from 'node:crypto'
import type { ChatMessage, ChatRequest } from '../core/openai-schema.js'
import type { ThinkingBlock } from '../core/reasoning.js'

export interface MockToolCall {
  id: string
  name: string
  arguments: string
}

export interface MockThinking {
  text: string
  block: Extract<ThinkingBlock, { type: 'thinking' }>
}

type Schema = Record<string, unknown>

const digest = (text: string) => createHash('sha256').update(text).digest()

/**
 * The tool call to answer with, or null for a text answer: the tool tool_choice names, else the first
 * tool. tool_choice 'none' never calls one; 'auto' (or none given) calls one unless the last message is
 * a tool result already, so an agent's loop ends with text; 'required' and a named tool always call.
 */
export function mockToolCall(req: ChatRequest): MockToolCall | null {
  const tools = req.tools ?? []
  const choice = req.tool_choice
  if (tools.length === 0 || choice === 'none') return null
  const forced = choice === 'required' || typeof choice === 'object'
  if (!forced && req.messages.at(-1)?.role === 'tool') return null
  const named = typeof choice === 'object' ? choice.function.name : null
  const tool = (named && tools.find((t) => t.function.name === named)) || tools[0]!
  const args = JSON.stringify(valueFor(tool.function.parameters ?? { type: 'object' }, tool.function.name))
  const id = `call_${digest(`${tool.function.name}\n${args}\n${req.messages.length}`).toString('hex').slice(0, 24)}`
  return { id, name: tool.function.name, arguments: args }
}

/** A value that satisfies the schema's required parts: consts and enums first, then one per type. */
export function valueFor(schema: unknown, name: string): unknown {
  if (!schema || typeof schema !== 'object') return `mock ${name}`
  const s = schema as Schema
  if ('const' in s) return s.const
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0]
  const variants = (s.anyOf ?? s.oneOf) as unknown[] | undefined
  if (Array.isArray(variants) && variants.length > 0) return valueFor(variants[0], name)
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type
  switch (type) {
    case 'string':
      return `mock ${name}`
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 1
    case 'boolean':
      return true
    case 'null':
      return null
    case 'array':
      return typeof s.minItems === 'number' && s.minItems > 0 ? [valueFor(s.items, name)] : []
    default: {
      const properties = (s.properties ?? {}) as Record<string, unknown>
      const required = Array.isArray(s.required) ? (s.required as string[]) : []
      return Object.fromEntries(required.map((key) => [key, valueFor(properties[key], key)]))
    }
  }
}

/** Thinking when the request asks for reasoning (any reasoning_effort but 'none'); null otherwise. */
export function mockThinking(req: ChatRequest, prompt: string, call: MockToolCall | null): MockThinking | null {
  const effort = req.reasoning_effort
  if (typeof effort !== 'string' || effort === 'none') return null
  const plan = call ? `call ${call.name}` : 'answer in text'
  const text = `Mock reasoning (${effort}): the user said "${prompt.slice(0, 100)}", so I will ${plan}.`
  return { text, block: { type: 'thinking', thinking: text, signature: `mock-signature-${digest(`mock thinking\n${text}`).toString('base64')}` } }
}

export function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return contentText(messages[i]!.content)
  return ''
}

export function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content
  if (!content) return ''
  return content.map((p) => (typeof p.text === 'string' ? p.text : '')).join('')
}
