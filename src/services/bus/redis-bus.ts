import { Redis } from 'ioredis'
import type { BusMessageHandler, MessageBus } from './message-bus.js'

export interface RedisBus extends MessageBus {
  /** The command connection, shared with other users of Redis (rate limits, readiness). */
  readonly commands: Redis
}

/**
 * Two connections for the whole process, whatever the number of jobs and streams:
 * one for commands and PUBLISH, one in subscriber mode. ioredis reconnects both and
 * subscribes again by itself after an outage.
 */
export async function createRedisBus(url: string, log: { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void }, options: { commandTimeoutMs?: number } = {}): Promise<RedisBus> {
  const retryStrategy = (attempt: number) => Math.min(100 * 2 ** attempt, 2000)
  // Commands fail fast during an outage instead of queueing without bound, and fail after
  // commandTimeout when Redis keeps the connection but stops answering (frozen, swapping): a
  // request never waits longer than that for a rate-limit count. Callers retry what matters.
  const commands = new Redis(url, {
    lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, connectionName: 'nexa-gateway',
    commandTimeout: options.commandTimeoutMs ?? 1_000,
  })
  const subscriber = new Redis(url, { lazyConnect: true, retryStrategy, connectionName: 'nexa-gateway-sub', autoResubscribe: true })
  const handlers: Array<{ pattern: string; handler: BusMessageHandler }> = []
  const connectionListeners: Array<(connected: boolean) => void> = []
  let connected = false

  const setConnected = (value: boolean) => {
    if (connected === value) return
    connected = value
    for (const listener of connectionListeners) listener(value)
  }

  subscriber.on('pmessage', (pattern: string, channel: string, message: string) => {
    for (const h of handlers) if (h.pattern === pattern) h.handler(channel, message)
  })
  subscriber.on('ready', () => {
    // 'ready' fires before ioredis has re-sent PSUBSCRIBE; a PING queued behind it confirms both.
    subscriber.ping().then(() => {
      log.info({ redis: 'subscriber' }, 'redis subscriber ready')
      setConnected(true)
    }, () => {})
  })
  subscriber.on('close', () => {
    if (connected) log.warn({ redis: 'subscriber' }, 'redis subscriber connection lost; reconnecting')
    setConnected(false)
  })
  for (const client of [commands, subscriber]) client.on('error', () => {}) // reported through 'close' and readiness

  await Promise.all([commands.connect(), subscriber.connect()])

  return {
    mode: 'redis',
    commands,
    async publish(channel, message) {
      await commands.publish(channel, message)
    },
    async listen(pattern, handler) {
      handlers.push({ pattern, handler })
      await subscriber.psubscribe(pattern)
      setConnected(true)
    },
    isConnected: () => connected && commands.status === 'ready',
    responds: () => commands.ping().then(() => true, () => false),
    onConnectionChange(listener) {
      connectionListeners.push(listener)
    },
    async close() {
      // During an outage QUIT cannot be sent (the command connection keeps no offline queue): stop
      // reconnecting instead, or the client would go on trying after the close.
      await Promise.all([subscriber, commands].map((client) => client.quit().catch(() => client.disconnect())))
    },
  }
}
