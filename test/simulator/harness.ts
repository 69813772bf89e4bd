import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { createRedisBus } from '../../src/services/bus/redis-bus.js'
import { buildSimulator, type SimulatorOptions } from '../../src/simulator/app.js'

interface Teardowns {
  teardown(fn: () => unknown): void
}

export interface HttpAnswer {
  status: number
  contentType: string | undefined
  text: string
  json(): unknown
}

export interface RunningSimulator {
  app: FastifyInstance
  url: string
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<HttpAnswer>
  setScenario(partnumber: string, scenario: object): Promise<void>
}

const quietLog = { info() {}, warn() {} }

/** The simulator on a free port, publishing to the given Redis; closed with the test. */
export async function startSimulator(t: Teardowns, redisUrl: string, settings: Omit<SimulatorOptions, 'bus' | 'logger'>): Promise<RunningSimulator> {
  const bus = await createRedisBus(redisUrl, quietLog)
  const app = await buildSimulator({ bus, ...settings })
  t.teardown(async () => {
    await app.close()
    await bus.close()
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) => httpCall(method, `${url}${path}`, body)
  return {
    app,
    url,
    call,
    async setScenario(partnumber, scenario) {
      const answer = await call('PUT', `/_sim/scenarios/${encodeURIComponent(partnumber)}`, scenario)
      if (answer.status !== 204) throw new Error(`scenario refused: ${answer.status} ${answer.text}`)
    },
  }
}

/** One HTTP call; `giveUpAfterMs` plays a client that stops waiting for the answer. */
export async function httpCall(method: string, url: string, body?: unknown, options: { giveUpAfterMs?: number } = {}): Promise<HttpAnswer> {
  const response = await request(url, {
    method: method as 'GET',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: options.giveUpAfterMs === undefined ? undefined : AbortSignal.timeout(options.giveUpAfterMs),
  })
  const text = await response.body.text()
  const contentType = response.headers['content-type']
  return { status: response.statusCode, contentType: Array.isArray(contentType) ? contentType[0] : contentType, text, json: () => JSON.parse(text) }
}

/** Everything published on one fresh progress channel, received through a separate Redis connection like the gateway's. */
export class ChannelRecorder {
  readonly raw: string[] = []
  /** performance.now() at each message's arrival. */
  readonly arrivedAt: number[] = []

  private constructor(readonly channel: string) {}

  static async open(t: Teardowns, redisUrl: string): Promise<ChannelRecorder> {
    const recorder = new ChannelRecorder(`progress-${randomUUID()}`)
    const subscriber = new Redis(redisUrl)
    t.teardown(() => subscriber.quit())
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== recorder.channel) return
      recorder.raw.push(message)
      recorder.arrivedAt.push(performance.now())
    })
    await subscriber.subscribe(recorder.channel)
    return recorder
  }

  get messages(): unknown[] {
    return this.raw.map((m) => JSON.parse(m))
  }

  /** Waits until `count` messages have arrived, and returns them parsed. */
  async received(count: number): Promise<unknown[]> {
    await this.waitFor(count)
    return this.messages
  }

  async waitFor(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.raw.length < count) {
      if (Date.now() > deadline) throw new Error(`${this.raw.length} of ${count} messages after ${timeoutMs} ms: ${this.raw.join('\n').slice(0, 2000)}`)
      await sleep(5)
    }
  }

  /** Waits `ms` and returns how many messages arrived meanwhile: for asserting silence. */
  async arrivingWithin(ms: number): Promise<number> {
    const before = this.raw.length
    await sleep(ms)
    return this.raw.length - before
  }
}
