/**
 * The gateway's chat completion as a Response object. Output items, in order: a `reasoning` item (the
 * reasoning text as its summary; the thinking blocks, with their signatures, in `encrypted_content` so the
 * client can send them back), the `message` (text, then a refusal), then one item per tool call
 * (`function_call`, or `custom_tool_call` for a custom tool). `encrypted_content` is always filled, as
 * OpenAI now does by default, whatever `include` said: that way the items a stored response keeps
 * (previous_response_id) carry the blocks as well, and every reasoning item made here can be recognised
 * (thinking-codec.ts).
 */
import type { ChatCompletion, ToolCall } from '../../core/openai-schema.js'
import { reasoningText, type ThinkingBlock } from '../../core/reasoning.js'
import type { ResponsesRequest } from '../../core/responses-schema.js'
import { finish, newItemId, outputText, responseShell, type MessageOutput, type OutputItem, type ReasoningOutput, type ResponseObject, type ResponseOptions } from './output.js'
import { encodeThinking } from './thinking-codec.js'
import { customInput, toolNames, type ToolNames } from './tools.js'
import { toResponsesUsage } from './usage.js'

export function toResponse(completion: ChatCompletion, req: ResponsesRequest, opts: ResponseOptions = {}): ResponseObject {
  const response = responseShell(req, opts)
  const choice = completion.choices[0]
  const cut = choice?.finish_reason === 'length' || choice?.finish_reason === 'content_filter'
  if (choice) {
    const message = choice.message
    const reasoning = reasoningItem(response.id, reasoningText(message as { reasoning?: unknown }), message.thinking_blocks as ThinkingBlock[] | undefined)
    if (reasoning) response.output.push(reasoning)
    const content: MessageOutput['content'] = []
    if (message.content) content.push({ type: 'output_text', text: message.content, annotations: [], logprobs: [] })
    if (message.refusal) content.push({ type: 'refusal', refusal: message.refusal })
    if (content.length > 0) response.output.push({ id: newItemId('msg', response.id), type: 'message', status: cut ? 'incomplete' : 'completed', role: 'assistant', content })
    const names = toolNames(req.tools)
    for (const call of message.tool_calls ?? []) response.output.push(toolCallItem(response.id, call, names, cut))
  }
  finish(response, choice?.finish_reason ?? null)
  response.output_text = outputText(response.output)
  if (completion.usage) response.usage = toResponsesUsage(completion.usage)
  return response
}

/** The reasoning item of an answer, or null when there was no reasoning. */
export function reasoningItem(responseId: string, text: string | undefined, blocks: readonly ThinkingBlock[] | undefined): ReasoningOutput | null {
  if (!text && !blocks?.length) return null
  return {
    id: newItemId('rs', responseId),
    type: 'reasoning',
    summary: text ? [{ type: 'summary_text', text }] : [],
    encrypted_content: encodeThinking(blocks ?? []),
  }
}

/** A chat tool call as the function_call (or custom_tool_call) item of the tool it was made for. */
export function toolCallItem(responseId: string, call: ToolCall, names: ToolNames, cut: boolean): OutputItem {
  const origin = names.get(call.function.name)
  const namespace = origin?.namespace ? { namespace: origin.namespace } : {}
  const name = origin?.name ?? call.function.name
  if (origin?.kind === 'custom') {
    return { id: newItemId('ctc', responseId), type: 'custom_tool_call', call_id: call.id, name, ...namespace, input: customInput(call.function.arguments) }
  }
  return { id: newItemId('fc', responseId), type: 'function_call', status: cut ? 'incomplete' : 'completed', call_id: call.id, name, ...namespace, arguments: call.function.arguments }
}
