// The floor for any Node proxy: node:http in, undici out, bytes piped both ways, nothing else.
import { createServer } from 'node:http'
import { Pool } from 'undici'

const [, , portArg, upstream] = process.argv
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 })

const server = createServer(async (req, res) => {
  const chunks = []
  for await (const c of req) chunks.push(c)
  try {
    const up = await pool.request({
      method: req.method,
      path: req.url,
      headers: { 'content-type': 'application/json', authorization: 'Bearer upstream-key' },
      body: Buffer.concat(chunks),
    })
    res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] ?? 'application/json' })
    for await (const part of up.body) res.write(part)
    res.end()
  } catch (err) {
    res.writeHead(502).end(String(err))
  }
})
server.keepAliveTimeout = 65_000
server.listen(Number(portArg ?? 0), '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
