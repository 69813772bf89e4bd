import { request } from 'undici'

export interface SseEvent {
  event: string
  id?: string
  data: any
  retry?: number
}

export interface EventStreamClient {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Resolves with the next event (optionally of a given type, skipping others); rejects after timeoutMs. */
  next(type?: string, timeoutMs?: number): Promise<SseEvent>
  /** Every event until the server ends the stream. */
  rest(timeoutMs?: number): Promise<SseEvent[]>
  /** Everything received so far, including comments and retry hints. */
  received: { events: SseEvent[]; comments: string[]; retries: number[] }
  ended: Promise<void>
  close(): void
}

/** A real HTTP client reading a text/event-stream response as it arrives, parsed per the SSE spec. */
export async function openEventStream(url: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  const controller = new AbortController()
  const response = await request(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  const received = { events: [] as SseEvent[], comments: [] as string[], retries: [] as number[] }
  const queue: SseEvent[] = []
  let wake: (() => void) | undefined
  let done = false

  const ended = (async () => {
    if (response.statusCode !== 200) {
      received.events.push({ event: 'http-error', data: await response.body.json().catch(() => null) })
      return
    }
    let buffer = ''
    let current: Partial<SseEvent> & { dataLines: string[] } = { dataLines: [] }
    try {
      for await (const chunk of response.body) {
        buffer += chunk.toString()
        let newline: number
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, '')
          buffer = buffer.slice(newline + 1)
          if (line === '') {
            if (current.dataLines.length) {
              const event: SseEvent = { event: current.event ?? 'message', id: current.id, data: JSON.parse(current.dataLines.join('\n')) }
              received.events.push(event)
              queue.push(event)
              wake?.()
            }
            current = { dataLines: [] }
          } else if (line.startsWith(':')) received.comments.push(line.slice(1).trim())
          else {
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'event') current.event = value
            else if (field === 'id') current.id = value
            else if (field === 'data') current.dataLines.push(value)
            else if (field === 'retry') received.retries.push(Number(value))
          }
        }
      }
    } catch {
      // aborted by close()
    } finally {
      done = true
      wake?.()
    }
  })()

  async function next(type?: string, timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = queue.findIndex((e) => !type || e.event === type)
      if (index >= 0) return queue.splice(0, index + 1).at(-1)!
      if (done) throw new Error(`stream ended without a ${type ?? 'further'} event; got ${received.events.map((e) => e.event).join(',')}`)
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new Error(`no ${type ?? ''} event within ${timeoutMs} ms; got ${received.events.map((e) => e.event).join(',')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining)
        wake = () => { clearTimeout(timer); wake = undefined; resolve() }
      })
    }
  }

  return {
    status: response.statusCode,
    headers: response.headers,
    next,
    async rest(timeoutMs = 10_000) {
      await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error('stream did not end')), timeoutMs).unref())])
      return queue.splice(0)
    },
    received,
    ended,
    close: () => controller.abort(),
  }
}

/** Whether the server still holds the stream open after `ms` (it has not ended it). */
export async function stillOpenAfter(stream: EventStreamClient, ms: number): Promise<boolean> {
  return Promise.race([stream.ended.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), ms))])
}
