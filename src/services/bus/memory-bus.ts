import type { BusMessageHandler, MessageBus } from './message-bus.js'

interface Subscription {
  prefix: string
  handler: BusMessageHandler
}

/** Single-process bus: delivers asynchronously and in publish order, like Redis pub/sub on one connection. */
export function createMemoryBus(): MessageBus {
  const subscriptions: Subscription[] = []
  let closed = false
  return {
    mode: 'memory',
    async publish(channel, message) {
      if (closed) throw new Error('message bus is closed')
      const targets = subscriptions.filter((s) => channel.startsWith(s.prefix))
      setImmediate(() => {
        for (const { handler } of targets) handler(channel, message)
      })
    },
    async listen(pattern, handler) {
      if (!pattern.endsWith('*')) throw new Error('pattern must end with *')
      subscriptions.push({ prefix: pattern.slice(0, -1), handler })
    },
    isConnected: () => !closed,
    responds: async () => !closed,
    onConnectionChange() {},
    async close() {
      closed = true
      subscriptions.length = 0
    },
  }
}
