import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describeProvider, type FakeProvider, type RecordedRequest, type Scenario } from './provider-suite.js'

/** OpenAI's own wire format: JSON answers, `data:` SSE ending in `data: [DONE]`, `{error:{…}}` bodies. */
async function startFakeOpenAI(): Promise<FakeProvider> {
  const requests: RecordedRequest[] = []
  let scenario: Scenario = { kind: 'text', text: 'ok', usage: { prompt: 1, completion: 1 } }
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    for await (const c of req) raw += c
    const body = raw ? JSON.parse(raw) : undefined
    requests.push({ method: req.method!, path: req.url!, headers: req.headers, body })
    const base = { id: 'chatcmpl-x', created: 1_700_000_000, model: body.model }
    const usage = (u: { prompt: number; completion: number }) => ({ prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion })
    const s = scenario
    if (s.kind === 'error') {
      res.writeHead(s.status, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ error: { message: s.message, type: 'invalid_request_error', param: null, code: null } }))
    }
    if (!body.stream) {
      const message =
        s.kind === 'tool_call'
          ? { role: 'assistant', content: s.text ?? null, refusal: null, tool_calls: [{ id: s.id, type: 'function', function: { name: s.name, arguments: JSON.stringify(s.args) } }] }
          : { role: 'assistant', content: s.kind === 'text' ? s.text : '', refusal: null }
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [{ index: 0, message, finish_reason: s.kind === 'tool_call' ? 'tool_calls' : 'stop', logprobs: null }],
          usage: s.kind === 'stream_error' ? usage({ prompt: 1, completion: 1 }) : usage(s.usage),
        }),
      )
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const send = (choices: unknown[], extra: object = {}) => res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`)
    send([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])
    if (s.kind === 'text' || s.kind === 'stream_error') {
      for (const piece of s.text.match(/.{1,5}/g) ?? []) send([{ index: 0, delta: { content: piece }, finish_reason: null }])
      if (s.kind === 'stream_error') {
        res.write(`data: ${JSON.stringify({ error: { message: s.message, type: 'server_error' } })}\n\n`)
        return res.end()
      }
      send([{ index: 0, delta: {}, finish_reason: 'stop' }])
    } else {
      if (s.text) send([{ index: 0, delta: { content: s.text }, finish_reason: null }])
      const args = JSON.stringify(s.args)
      send([{ index: 0, delta: { tool_calls: [{ index: 0, id: s.id, type: 'function', function: { name: s.name, arguments: '' } }] }, finish_reason: null }])
      for (const frag of args.match(/.{1,4}/g) ?? []) send([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: frag } }] }, finish_reason: null }])
      send([{ index: 0, delta: {}, finish_reason: 'tool_calls' }])
    }
    if (body.stream_options?.include_usage) send([], { usage: usage(s.usage) })
    res.write('data: [DONE]\n\n')
    res.end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    apiKey: 'sk-upstream-openai-123',
    keyOf: (r) => String(r.headers.authorization ?? '').replace(/^Bearer /, ''),
    modelOf: (r) => r.body?.model,
    play: (s) => {
      scenario = s
    },
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  }
}

describeProvider({ type: 'openai', start: startFakeOpenAI })
