import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { request } from 'undici'

// Many cheap event-stream clients (plain node:http, one connection each, no parser beyond what the
// assertions need), and a slow AI server in front of the simulator.

export interface LightStream {
  status: number
  /** Named events received, in order. */
  events: string[]
  /** `retry:` values received, in order (the first comes with the headers). */
  retries: number[]
  ended: boolean
  /** Resolves when the server ends the response or the connection closes. */
  closed: Promise<void>
  socket: Socket
  /** Cuts the connection abruptly (RST where the platform allows), as a vanished client does. */
  drop(): void
}

/** Opens one stream; resolves once the headers are in (the status tells whether it was accepted). */
export function openLightStream(url: string, headers: Record<string, string> = {}): Promise<LightStream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } })
    req.on('error', reject)
    req.on('response', (res: IncomingMessage) => {
      const socket = res.socket
      let buffer = ''
      let closeResolve!: () => void
      const stream: LightStream = {
        status: res.statusCode ?? 0, events: [], retries: [], ended: false, socket,
        closed: new Promise<void>((r) => { closeResolve = r }),
        drop() {
          if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
          else socket.destroy()
        },
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let cut: number
        while ((cut = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 1)
          if (line.startsWith('event: ')) stream.events.push(line.slice(7))
          else if (line.startsWith('retry: ')) stream.retries.push(Number(line.slice(7)))
        }
      })
      const finish = () => { stream.ended = true; closeResolve() }
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', finish)
      resolve(stream)
    })
    req.end()
  })
}

/** Opens `count` streams, `concurrency` at a time. */
export async function openManyStreams(count: number, urlFor: (i: number) => string, concurrency = 100): Promise<LightStream[]> {
  const streams: LightStream[] = new Array(count)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++
      streams[i] = await openLightStream(urlFor(i))
    }
  }))
  return streams
}

export interface SlowAiServer {
  url: string
  /** Start requests received so far. */
  received: number
  close(): Promise<void>
}

/** An AI server that answers after `delayMs`: it forwards each request to the simulator and holds the answer. */
export async function startSlowAiServer(simulatorUrl: string, delayMs: number): Promise<SlowAiServer> {
  const sockets = new Set<Socket>()
  const state = { received: 0 }
  const server: Server = createServer(async (req, res) => {
    state.received++
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    await new Promise((r) => setTimeout(r, delayMs))
    try {
      const answer = await request(`${simulatorUrl}${req.url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
      res.writeHead(answer.statusCode, { 'content-type': 'application/json' })
      res.end(Buffer.from(await answer.body.arrayBuffer()))
    } catch {
      res.writeHead(502).end()
    }
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const address = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${address.port}`,
    get received() { return state.received },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}
