// A fast fake upstream for the benchmark, in three wire formats chosen by path: OpenAI chat completions,
// OpenAI Responses (/v1/responses) and Anthropic Messages (/v1/messages). Fixed JSON answers, SSE
// streams of N chunks with a gap, and a request counter so the bench can check that each client request
// reached it exactly once.
import { createServer } from 'node:http'

const port = Number(process.argv[2] ?? 0)
const chunks = Number(process.env.BENCH_STREAM_CHUNKS ?? 20)
const gapMs = Number(process.env.BENCH_STREAM_GAP_MS ?? 5)
let count = 0

const completion = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1700000000,
  model: 'bench-upstream',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the bench upstream.', refusal: null }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
})
const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'bench-upstream', choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })}\n\n`
const usageChunk = `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'bench-upstream', choices: [], usage: { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks } })}\n\n`

// OpenAI Responses: the answer and the event sequence a real stream has, text deltas in between.
const responseObject = (status, text, usage) => ({
  id: 'resp_bench', object: 'response', created_at: 1700000000, status, model: 'bench-upstream', output: status === 'completed'
    ? [{ id: 'msg_bench', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }]
    : [],
  usage,
})
const responsesUsage = { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 7, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 19 }
const responsesJson = JSON.stringify(responseObject('completed', 'Hello from the bench upstream.', responsesUsage))
const responsesEvent = (seq, type, fields) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...fields })}\n\n`
// Anthropic Messages: likewise.
const messageJson = JSON.stringify({ id: 'msg_bench', type: 'message', role: 'assistant', model: 'bench-upstream', content: [{ type: 'text', text: 'Hello from the bench upstream.' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 12, output_tokens: 7 } })
const messagesEvent = (type, fields) => `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`

/** Writes a stream's opening, `chunks` middle events `gap` ms apart, then its close. */
function streamOut(res, gap, first, middle, last) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.write(first)
  let i = 0
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer)
    if (i < chunks) {
      res.write(middle(i))
      i++
      return
    }
    clearInterval(timer)
    res.end(last)
  }, gap)
}

function answerResponses(res, stream, gap) {
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(responsesJson) })
    return res.end(responsesJson)
  }
  const item = { id: 'msg_bench', type: 'message', status: 'in_progress', role: 'assistant', content: [] }
  const where = { item_id: 'msg_bench', output_index: 0, content_index: 0 }
  const text = Array.from({ length: chunks }, (_, i) => `tok${i} `).join('')
  const done = { ...item, status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] }
  streamOut(
    res,
    gap,
    responsesEvent(0, 'response.created', { response: responseObject('in_progress', '', null) }) +
      responsesEvent(1, 'response.in_progress', { response: responseObject('in_progress', '', null) }) +
      responsesEvent(2, 'response.output_item.added', { output_index: 0, item }) +
      responsesEvent(3, 'response.content_part.added', { ...where, part: { type: 'output_text', text: '', annotations: [] } }),
    (i) => responsesEvent(4 + i, 'response.output_text.delta', { ...where, delta: `tok${i} `, logprobs: [] }),
    responsesEvent(4 + chunks, 'response.output_text.done', { ...where, text, logprobs: [] }) +
      responsesEvent(5 + chunks, 'response.content_part.done', { ...where, part: done.content[0] }) +
      responsesEvent(6 + chunks, 'response.output_item.done', { output_index: 0, item: done }) +
      responsesEvent(7 + chunks, 'response.completed', { response: { ...responseObject('completed', text, { ...responsesUsage, output_tokens: chunks, total_tokens: 12 + chunks }) } }),
  )
}

function answerMessages(res, stream, gap) {
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(messageJson) })
    return res.end(messageJson)
  }
  streamOut(
    res,
    gap,
    messagesEvent('message_start', { message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'bench-upstream', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } }) +
      messagesEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
      messagesEvent('ping', {}),
    (i) => messagesEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `tok${i} ` } }),
    messagesEvent('content_block_stop', { index: 0 }) +
      messagesEvent('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: chunks } }) +
      messagesEvent('message_stop', {}),
  )
}

const server = createServer((req, res) => {
  if (req.url === '/__count') {
    res.writeHead(200, { 'content-type': 'application/json' })
    return res.end(JSON.stringify({ count }))
  }
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (d) => (body += d))
  req.on('end', () => {
    count++
    const stream = body.includes('"stream":true')
    const custom = body.includes('bench_gap_ms') ? JSON.parse(body).bench_gap_ms : null
    if (req.url.startsWith('/v1/responses')) return answerResponses(res, stream, custom ?? gapMs)
    if (req.url.startsWith('/v1/messages')) return answerMessages(res, stream, custom ?? gapMs)
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) })
      return res.end(completion)
    }
    streamOut(res, custom ?? gapMs, chunk({ role: 'assistant', content: '' }), (i) => chunk({ content: `tok${i} ` }), chunk({}, 'stop') + (body.includes('include_usage') ? usageChunk : '') + 'data: [DONE]\n\n')
  })
})
server.keepAliveTimeout = 65_000
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
