/**
 * Responses tools as chat-completions tools, and the way back from a chat tool call to the Responses
 * item it stands for.
 *
 * - `function` tools map one to one.
 * - `namespace` tools are flattened: each inner tool becomes `<namespace>__<name>`; calls come back as
 *   items carrying `namespace` and the inner name.
 * - `custom` (free-form) tools become a function taking one string, `input`; a grammar in `format`
 *   is written into the description, but an upstream cannot enforce it (reported as dropped).
 * - Hosted tools (web_search, file_search, code_interpreter, image_generation, mcp, tool_search) run on
 *   OpenAI's servers. Offered to the model, they are left out and reported as dropped: the model answers
 *   without them (Codex offers web_search on every turn, and must still work). Forced by `tool_choice`
 *   (by type, or 'required' with nothing else to call) they are refused with a 400 naming the tool.
 * - Built-in tools that the client runs but whose call items only OpenAI's models produce (local_shell,
 *   shell, apply_patch, computer use) and types this proxy does not know are refused with a 400.
 */
import { invalidRequest, type ProxyError } from '../../core/errors.js'
import type { ChatRequest } from '../../core/openai-schema.js'
import type { CustomTool, FunctionTool, NamespaceTool, ResponsesRequest, ResponsesTool } from '../../core/responses-schema.js'

/** Where a chat tool name came from. */
export interface ToolOrigin {
  kind: 'function' | 'custom'
  name: string
  namespace?: string
}

/** chat tool name -> the Responses tool it stands for */
export type ToolNames = Map<string, ToolOrigin>

type ChatTool = NonNullable<ChatRequest['tools']>[number]
type ChatToolChoice = ChatRequest['tool_choice']

const HOSTED = new Set([
  'web_search',
  'web_search_2025_08_26',
  'web_search_preview',
  'web_search_preview_2025_03_11',
  'file_search',
  'code_interpreter',
  'image_generation',
  'mcp',
  'tool_search',
])

/** The chat name of a tool inside a namespace. */
export function chatToolName(name: string, namespace?: string): string {
  return namespace ? `${namespace}__${name}` : name
}

/** The chat names of every function and custom tool of a request (flattened namespaces included). */
export function toolNames(tools: readonly ResponsesTool[] | undefined): ToolNames {
  const names: ToolNames = new Map()
  for (const tool of tools ?? []) {
    if (tool.type === 'function' || tool.type === 'custom') names.set(tool.name as string, { kind: tool.type, name: tool.name as string })
    if (tool.type === 'namespace') {
      const ns = tool as NamespaceTool
      for (const inner of ns.tools) {
        if (inner.type !== 'function' && inner.type !== 'custom') continue
        const name = inner.name as string
        names.set(chatToolName(name, ns.name), { kind: inner.type, name, namespace: ns.name })
      }
    }
  }
  return names
}

export interface MappedTools {
  tools?: ChatTool[]
  tool_choice?: ChatToolChoice
  parallel_tool_calls?: boolean
}

/** The request's tools, tool_choice and parallel_tool_calls in chat form; `dropped` collects what was left out. */
export function mapTools(req: ResponsesRequest, dropped: string[]): MappedTools {
  const hosted: string[] = []
  let tools: ChatTool[] = []
  const seen = new Set<string>()
  const add = (tool: ChatTool, at: string) => {
    if (seen.has(tool.function.name)) {
      throw invalidRequest(`Invalid value for '${at}': two tools are called '${tool.function.name}' once namespaces are flattened to <namespace>__<name>.`, at, 'invalid_value')
    }
    seen.add(tool.function.name)
    tools.push(tool)
  }
  ;(req.tools ?? []).forEach((tool, i) => {
    const at = `tools[${i}]`
    if (tool.type === 'function' || tool.type === 'custom') return add(chatTool(tool as FunctionTool | CustomTool, undefined, at, dropped), at)
    if (tool.type === 'namespace') {
      const ns = tool as NamespaceTool
      ns.tools.forEach((inner, j) => {
        if (inner.type !== 'function' && inner.type !== 'custom') throw notTranslated(`${at}.tools[${j}]`, inner.type)
        add(chatTool(inner as FunctionTool | CustomTool, ns.name, `${at}.tools[${j}]`, dropped), `${at}.tools[${j}]`)
      })
      return
    }
    if (!HOSTED.has(tool.type)) throw notTranslated(at, tool.type)
    hosted.push(tool.type)
    dropped.push(`${at}:${tool.type}`)
  })

  let choice = req.tool_choice
  if (choice && typeof choice === 'object' && choice.type === 'allowed_tools') {
    const allowed = new Set((choice.tools as Array<{ name?: unknown }>).map((t) => t.name))
    const names = toolNames(req.tools)
    tools = tools.filter((t) => allowed.has(t.function.name) || allowed.has(names.get(t.function.name)?.name))
    choice = choice.mode as 'auto' | 'required'
  }
  const out: MappedTools = {}
  if (choice && typeof choice === 'object') {
    if (choice.type !== 'function' && choice.type !== 'custom') throw forcedHosted(choice.type, 'tool_choice.type')
    out.tool_choice = { type: 'function', function: { name: forcedName(choice.name as string, tools) } }
  } else if (choice === 'required' && tools.length === 0) {
    if (hosted[0]) throw forcedHosted(hosted[0], 'tool_choice')
    throw invalidRequest("Invalid value for 'tool_choice': it is 'required', but there is no tool to call.", 'tool_choice', 'invalid_value')
  } else if (choice && tools.length > 0) {
    out.tool_choice = choice
  }
  if (tools.length === 0) return out
  out.tools = tools
  if (req.parallel_tool_calls != null) out.parallel_tool_calls = req.parallel_tool_calls
  return out
}

function chatTool(tool: FunctionTool | CustomTool, namespace: string | undefined, at: string, dropped: string[]): ChatTool {
  const name = chatToolName(tool.name, namespace)
  if (tool.type === 'function') {
    const fn: ChatTool['function'] = { name }
    if (tool.description) fn.description = tool.description
    if (tool.parameters) fn.parameters = tool.parameters
    if (tool.strict != null) fn.strict = tool.strict
    return { type: 'function', function: fn }
  }
  const format = tool.format as { type: string; syntax?: unknown; definition?: unknown } | undefined
  let description = tool.description ?? ''
  if (format && format.type !== 'text') {
    dropped.push(`${at}.format`)
    if (typeof format.definition === 'string') {
      description += `${description ? '\n\n' : ''}The input must follow this ${typeof format.syntax === 'string' ? format.syntax : ''} grammar:\n${format.definition}`
    }
  }
  return {
    type: 'function',
    function: {
      name,
      ...(description ? { description } : {}),
      parameters: { type: 'object', properties: { input: { type: 'string', description: 'The raw input of the tool.' } }, required: ['input'], additionalProperties: false },
    },
  }
}

/** A custom tool call's chat arguments as its free-form input (the arguments themselves when they are not our wrapper). */
export function customInput(args: string): string {
  try {
    const parsed = JSON.parse(args) as { input?: unknown }
    if (parsed && typeof parsed.input === 'string') return parsed.input
  } catch {
    // not JSON: the model wrote the input directly
  }
  return args
}

/** A custom tool call's free-form input as chat arguments. */
export function customArguments(input: string): string {
  return JSON.stringify({ input })
}

/** A function named in tool_choice, found under its own name or inside a namespace. */
function forcedName(name: string, tools: ChatTool[]): string {
  if (tools.some((t) => t.function.name === name)) return name
  const nested = tools.find((t) => t.function.name.endsWith(`__${name}`))
  if (nested) return nested.function.name
  throw invalidRequest(`Invalid value for 'tool_choice.name': no function or custom tool called '${name}' is in 'tools'.`, 'tool_choice.name', 'invalid_value')
}

function notTranslated(at: string, type: string): ProxyError {
  return invalidRequest(
    `Tool type '${type}' (${at}) is not supported for this model: its provider is called through chat completions, which takes function and custom tools only. Remove it, or route the model to an OpenAI or Azure provider.`,
    at,
    'unsupported_tool',
  )
}

function forcedHosted(type: string, at: string): ProxyError {
  return invalidRequest(
    `'tool_choice' requires the hosted tool '${type}', which runs on OpenAI's servers; this model's provider is called through chat completions and cannot run it. Remove the tool (or let tool_choice be 'auto'), or route the model to an OpenAI or Azure provider.`,
    at,
    'unsupported_tool',
  )
}
