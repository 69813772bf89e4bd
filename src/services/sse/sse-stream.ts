import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'

export const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx: do not buffer this response, whatever proxy_buffering says.
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
}

/**
 * A reconnect delay between half and one and a half times `retryMs`: clients dropped together (a
 * network blip, an instance stopping, an outage) come back spread out instead of all at once.
 */
export const jittered = (retryMs: number) => Math.round(retryMs * (0.5 + Math.random()))

/**
 * Node keeps the response head it built for as long as the response lives, as a string of ~90
 * concatenated pieces (a name, a separator, a value, a line end for each header). An event stream
 * lives for minutes or hours: one flat copy of its head costs ~4 KB less memory per open stream
 * (bench/README.md, scenario 1). Header text is Latin-1 (Node refuses anything else), so the copy is exact.
 */
function compactHead(res: ServerResponse): void {
  const response = res as unknown as { _header?: unknown }
  if (typeof response._header === 'string') response._header = Buffer.from(response._header, 'latin1').toString('latin1')
}

/** One open Server-Sent Events response. Writes are cheap and never wait: a client too slow to read is dropped. */
export class SseStream {
  private closed = false
  /** Heartbeat ticks since this stream last had something written (see SseRegistry). */
  quietTicks = 0
  private readonly closeListeners: Array<() => void> = []
  /** What the heartbeat adds to its ping on this stream (see whenQuiet). */
  private quietReport?: () => void

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferedBytes: number,
    private readonly onSlowReader?: () => void,
  ) {
    res.on('close', () => this.markClosed())
  }

  get isOpen(): boolean {
    return !this.closed
  }

  open(headers: OutgoingHttpHeaders, retryMs: number): void {
    this.res.writeHead(200, { ...headers, ...SSE_HEADERS })
    compactHead(this.res)
    this.res.socket?.setNoDelay(true)
    this.write(`retry: ${jittered(retryMs)}\n\n`)
  }

  send(event: string, id: number, data: unknown): void {
    this.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  comment(text: string): void {
    this.write(`: ${text}\n\n`)
  }

  /**
   * `report` runs on the shared heartbeat, right after the ping, each time this stream has had
   * nothing written for a whole interval (an event stream says there how long its job has been
   * quiet). No timer of its own: one for all streams. Replaces any earlier report; undefined stops it.
   */
  whenQuiet(report: (() => void) | undefined): void {
    this.quietReport = report
  }

  /** The heartbeat found this stream quiet: a ping (kept for proxies and clients that count them), then its report. */
  heartbeat(): void {
    this.comment('ping')
    this.quietReport?.()
  }

  /** Ends the response; with `retryMs`, first tells the client when to reconnect (jittered). */
  end(retryMs?: number): void {
    if (this.closed) return
    if (retryMs !== undefined) this.write(`retry: ${jittered(retryMs)}\n\n`)
    this.res.end()
    this.markClosed()
  }

  onClose(listener: () => void): void {
    if (this.closed) listener()
    else this.closeListeners.push(listener)
  }

  private write(chunk: string): void {
    if (this.closed) return
    this.quietTicks = 0
    this.res.write(chunk)
    // The kernel buffer is full and ours keeps growing: this client does not read. Cut it loose
    // rather than hold memory for it without bound (EventSource reconnects and gets a snapshot).
    if (this.res.writableLength > this.maxBufferedBytes) {
      this.res.destroy()
      if (!this.closed) this.onSlowReader?.()
      this.markClosed()
    }
  }

  private markClosed(): void {
    if (this.closed) return
    this.closed = true
    this.quietReport = undefined
    for (const listener of this.closeListeners.splice(0)) listener()
  }
}

/** Streams pinged in one go before the heartbeat lets other work run. */
const PING_SLICE = 256
/** The heartbeat looks at the streams this many times per interval. */
const TICKS_PER_INTERVAL = 4

/**
 * Every open stream of the process: one heartbeat timer for all of them, and a way to end them all.
 * Only a quiet stream gets the heartbeat: one that has had nothing written for a whole interval
 * (so at most an interval and a quarter between two writes); a stream may add its own report to
 * it (SseStream.whenQuiet), which is how a job's stream says how long its job has been waiting. A stream that carries live messages
 * needs no ping to stay open, and pinging ten thousand busy streams at once costs their live
 * messages a burst of socket writes to wait behind.
 */
export class SseRegistry {
  private readonly streams = new Set<SseStream>()
  private readonly heartbeat: NodeJS.Timeout

  constructor(private readonly options: { heartbeatMs: number; retryMs: number; maxBufferedBytes: number; onCountChange?: (open: number) => void; onSlowReader?: () => void }) {
    this.heartbeat = setInterval(() => this.pingQuiet(), options.heartbeatMs / TICKS_PER_INTERVAL)
    this.heartbeat.unref()
  }

  get size(): number {
    return this.streams.size
  }

  open(res: ServerResponse, headers: OutgoingHttpHeaders): SseStream {
    const stream = new SseStream(res, this.options.maxBufferedBytes, this.options.onSlowReader)
    stream.open(headers, this.options.retryMs)
    this.streams.add(stream)
    this.options.onCountChange?.(this.streams.size)
    stream.onClose(() => {
      this.streams.delete(stream)
      this.options.onCountChange?.(this.streams.size)
    })
    return stream
  }

  /**
   * A heartbeat comment to every quiet stream, a slice at a time: one loop over tens of thousands
   * of streams would hold the event loop for a hundred milliseconds or more, and every live message
   * arriving meanwhile would wait that long.
   */
  private pingQuiet(): void {
    const quiet: SseStream[] = []
    for (const stream of this.streams) if (++stream.quietTicks >= TICKS_PER_INTERVAL) quiet.push(stream)
    const pingFrom = (start: number) => {
      const end = Math.min(start + PING_SLICE, quiet.length)
      for (let i = start; i < end; i++) quiet[i]!.heartbeat()
      if (end < quiet.length) setImmediate(pingFrom, end)
    }
    pingFrom(0)
  }

  /** Shutdown: each client is told to come back after a jittered delay (so they do not all return at once), then closed. */
  closeAll(): void {
    clearInterval(this.heartbeat)
    for (const stream of [...this.streams]) stream.end(this.options.retryMs)
  }
}
