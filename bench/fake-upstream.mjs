// A fast fake OpenAI upstream for the benchmark: fixed JSON answers, SSE streams of N chunks with a gap,
// and a request counter so the bench can check that each client request reached it exactly once.
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
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) })
      return res.end(completion)
    }
    const custom = body.includes('bench_gap_ms') ? JSON.parse(body).bench_gap_ms : null
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(chunk({ role: 'assistant', content: '' }))
    let i = 0
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer)
      if (i < chunks) {
        res.write(chunk({ content: `tok${i} ` }))
        i++
        return
      }
      clearInterval(timer)
      res.write(chunk({}, 'stop'))
      if (body.includes('include_usage')) res.write(usageChunk)
      res.end('data: [DONE]\n\n')
    }, custom ?? gapMs)
  })
})
server.keepAliveTimeout = 65_000
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
