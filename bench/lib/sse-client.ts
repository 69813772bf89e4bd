import { connect, type Socket } from 'node:net'

// A lean Server-Sent Events client over a raw TCP socket: one HTTP/1.1 GET, chunked transfer
// decoding and the SSE framing, nothing else. Thousands of these fit in one load process; each
// event is handed over the moment its bytes are parsed, which is where latency is measured.
// Bytes are read as latin1 so that chunk sizes (in bytes) match string lengths.

export interface SseHandlers {
  /** The response head: status and raw header block. */
  onHead?(status: number, head: string): void
  onEvent(event: string, data: string, id: string | undefined): void
  onRetry?(ms: number): void
  /** The stream ended (server closed, error, or close()). */
  onEnd(reason: string | undefined, status: number): void
}

export interface SseTarget {
  host: string
  port: number
  path: string
  headers?: Record<string, string>
}

const enum Phase { Head, Size, Data, DataEnd, Plain, Done }

export class SseConnection {
  readonly socket: Socket
  status = 0
  private phase = Phase.Head
  private raw = ''
  private remaining = 0
  private body = ''
  private event = ''
  private data: string[] = []
  private id: string | undefined
  private ended = false

  constructor(target: SseTarget, private readonly handlers: SseHandlers) {
    const lines = [`GET ${target.path} HTTP/1.1`, `Host: ${target.host}:${target.port}`, 'Accept: text/event-stream']
    for (const [name, value] of Object.entries(target.headers ?? {})) lines.push(`${name}: ${value}`)
    const request = `${lines.join('\r\n')}\r\n\r\n`
    this.socket = connect({ host: target.host, port: target.port, noDelay: true })
    this.socket.setEncoding('latin1')
    this.socket.once('connect', () => this.socket.write(request))
    this.socket.on('data', (chunk: string) => this.feed(chunk))
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.end(err.code ?? err.message))
    this.socket.on('close', () => this.end(this.phase === Phase.Done ? undefined : 'closed'))
  }

  close(): void {
    this.end('closed by client')
    this.socket.destroy()
  }

  private end(reason: string | undefined): void {
    if (this.ended) return
    this.ended = true
    this.handlers.onEnd(reason, this.status)
  }

  private feed(chunk: string): void {
    this.raw += chunk
    for (;;) {
      switch (this.phase) {
        case Phase.Head: {
          const end = this.raw.indexOf('\r\n\r\n')
          if (end < 0) return
          const head = this.raw.slice(0, end)
          this.raw = this.raw.slice(end + 4)
          this.status = Number(head.slice(9, 12))
          this.handlers.onHead?.(this.status, head)
          this.phase = /\r\ntransfer-encoding:\s*chunked/i.test(head) ? Phase.Size : Phase.Plain
          break
        }
        case Phase.Size: {
          const end = this.raw.indexOf('\r\n')
          if (end < 0) return
          this.remaining = Number.parseInt(this.raw.slice(0, end), 16)
          this.raw = this.raw.slice(end + 2)
          if (this.remaining === 0) {
            this.phase = Phase.Done
            this.socket.end()
            return
          }
          this.phase = Phase.Data
          break
        }
        case Phase.Data: {
          if (!this.raw.length) return
          const take = Math.min(this.remaining, this.raw.length)
          this.body += this.raw.slice(0, take)
          this.raw = this.raw.slice(take)
          this.remaining -= take
          if (this.remaining === 0) {
            this.phase = Phase.DataEnd
            this.parseEvents()
          }
          break
        }
        case Phase.DataEnd: {
          if (this.raw.length < 2) return
          this.raw = this.raw.slice(2)
          this.phase = Phase.Size
          break
        }
        case Phase.Plain: {
          // An error answer (401, 404, 503...) with a length: its body is not an event stream.
          this.body += this.raw
          this.raw = ''
          if (this.status === 200) this.parseEvents()
          return
        }
        case Phase.Done:
          return
      }
    }
  }

  private parseEvents(): void {
    let start = 0
    for (;;) {
      const end = this.body.indexOf('\n', start)
      if (end < 0) break
      const line = this.body.slice(start, end)
      start = end + 1
      if (line === '') {
        if (this.data.length) this.handlers.onEvent(this.event || 'message', this.data.join('\n'), this.id)
        this.event = ''
        this.data = []
        continue
      }
      if (line.charCodeAt(0) === 58 /* : comment */) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1)
      if (field === 'data') this.data.push(value)
      else if (field === 'event') this.event = value
      else if (field === 'id') this.id = value
      else if (field === 'retry') this.handlers.onRetry?.(Number(value))
    }
    this.body = start === 0 ? this.body : this.body.slice(start)
  }
}

/** Monotonic clock shared by every process of the machine (CLOCK_MONOTONIC), in nanoseconds as a double. */
export const nowNs = (): number => Number(process.hrtime.bigint())
