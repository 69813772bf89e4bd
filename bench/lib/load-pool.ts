import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { exited, spawnNode, stopChild } from './procs.js'
import type { LoadCommand, LoadReply, PublisherCommand, PublisherReply } from './protocol.js'

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url))
const PUBLISHER = fileURLToPath(new URL('./publisher.ts', import.meta.url))

/** One IPC request at a time per child; rejects if the child dies or does not answer in time. */
class Channel<C, R extends { type: string }> {
  private waiting: { resolve: (reply: R) => void; reject: (err: Error) => void } | undefined

  constructor(readonly child: ChildProcess, readonly name: string) {
    child.on('message', (reply: R) => {
      const waiting = this.waiting
      this.waiting = undefined
      if (!waiting) return
      if (reply.type === 'error') waiting.reject(new Error(`${name}: ${(reply as unknown as { message: string }).message}`))
      else waiting.resolve(reply)
    })
    child.once('exit', (code, signal) => this.waiting?.reject(new Error(`${name} exited (${signal ?? code})`)))
  }

  /** Waits for the child's first message (it sends one when it is ready). */
  ready(timeoutMs = 60_000): Promise<R> {
    return this.await(timeoutMs)
  }

  request(command: C, timeoutMs: number): Promise<R> {
    const reply = this.await(timeoutMs)
    this.child.send(command as object)
    return reply
  }

  private await(timeoutMs: number): Promise<R> {
    if (this.waiting) throw new Error(`${this.name}: a request is already waiting`)
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined
        reject(new Error(`${this.name}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting = {
        resolve: (reply) => { clearTimeout(timer); resolve(reply) },
        reject: (err) => { clearTimeout(timer); reject(err) },
      }
    })
  }
}

/** Load processes, each holding its share of the streams. */
export class LoadPool {
  private constructor(private readonly workers: Array<Channel<LoadCommand, LoadReply>>) {}

  static async start(count: number): Promise<LoadPool> {
    const workers = Array.from({ length: count }, (_, i) => new Channel<LoadCommand, LoadReply>(spawnNode(WORKER, [], { ipc: true, inheritOutput: true }), `load worker ${i}`))
    await Promise.all(workers.map((w) => w.ready()))
    return new LoadPool(workers)
  }

  get size(): number {
    return this.workers.length
  }

  /** Sends each worker its own command (by index) and waits for all replies. */
  all<R extends LoadReply>(command: (index: number) => LoadCommand, timeoutMs: number): Promise<R[]> {
    return Promise.all(this.workers.map((w, i) => w.request(command(i), timeoutMs) as Promise<R>))
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      w.child.disconnect()
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 5_000)
      await exited(w.child)
      clearTimeout(timer)
    }))
  }
}

/** Splits `items` into `parts` nearly equal consecutive slices. */
export function split<T>(items: T[], parts: number): T[][] {
  const size = Math.ceil(items.length / parts)
  return Array.from({ length: parts }, (_, i) => items.slice(i * size, (i + 1) * size))
}

/** The process that publishes progress on the streams' channels, as the AI server does. */
export class Publisher {
  private constructor(private readonly channel: Channel<PublisherCommand, PublisherReply>) {}

  static async start(redisUrl: string, channels: string[]): Promise<Publisher> {
    const channel = new Channel<PublisherCommand, PublisherReply>(spawnNode(PUBLISHER, [], { ipc: true, inheritOutput: true }), 'publisher')
    await channel.ready()
    await channel.request({ cmd: 'channels', redisUrl, channels }, 30_000)
    return new Publisher(channel)
  }

  async publish(ratePerSec: number, count: number): Promise<Extract<PublisherReply, { type: 'published' }>> {
    const timeoutMs = (count / ratePerSec) * 1000 * 3 + 30_000
    return (await this.channel.request({ cmd: 'publish', ratePerSec, count }, timeoutMs)) as Extract<PublisherReply, { type: 'published' }>
  }

  async stop(): Promise<void> {
    await this.channel.request({ cmd: 'close' }, 10_000).catch(() => undefined)
    await stopChild(this.channel.child, 5_000)
  }
}
