// The bare reference: a minimal node:http server with one shared ioredis subscriber forwarding
// progress messages to event streams. No framework, authentication, database or snapshot: what the
// gateway's figures are divided by. GET /jobs/:id/events follows channel progress-:id.
import { createServer, type ServerResponse } from 'node:http'
import { Redis } from 'ioredis'

const port = Number(process.env.PORT)
const redisUrl = process.env.REDIS_URL!
const streams = new Map<string, Set<ServerResponse>>()
let nextId = 1

const subscriber = new Redis(redisUrl, { connectionName: 'bench-reference-sub' })
subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
  const set = streams.get(channel)
  if (!set) return
  const chunk = `id: ${nextId++}\nevent: progress\ndata: ${message}\n\n`
  for (const res of set) res.write(chunk)
})
await subscriber.psubscribe('progress-*')

const server = createServer((req, res) => {
  const match = /^\/jobs\/([\w-]+)\/events$/.exec(req.url ?? '')
  if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
  if (!match) return void res.writeHead(404).end()
  const channel = `progress-${match[1]}`
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' })
  res.socket?.setNoDelay(true)
  res.write(`retry: 3000\n\nid: ${nextId++}\nevent: snapshot\ndata: {"id":"${match[1]}"}\n\n`)
  let set = streams.get(channel)
  if (!set) streams.set(channel, (set = new Set()))
  set.add(res)
  res.on('close', () => {
    set.delete(res)
    if (set.size === 0) streams.delete(channel)
  })
})
server.keepAliveTimeout = 0
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.send?.({ type: 'ok' }))

const stop = () => {
  for (const set of streams.values()) for (const res of set) res.destroy()
  server.close()
  void subscriber.quit().finally(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
process.on('disconnect', stop)
