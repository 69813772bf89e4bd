import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createMemoryBus } from '../../services/bus/memory-bus.js'
import { createRedisBus } from '../../services/bus/redis-bus.js'
import type { MessageBus } from '../../services/bus/message-bus.js'

declare module 'fastify' {
  interface FastifyInstance {
    bus: MessageBus
    /** Redis command connection, when running with Redis. */
    redis?: Redis
  }
}

/** The message bus: Redis when REDIS_URL is set, else in-process (single-process mode). */
export default fp<{ bus?: MessageBus }>(async (app, opts) => {
  let bus = opts.bus
  if (!bus && app.config.redisUrl) {
    const redisBus = await createRedisBus(app.config.redisUrl, app.log, { commandTimeoutMs: app.config.redisCommandTimeoutMs })
    app.decorate('redis', redisBus.commands)
    bus = redisBus
  }
  if (!bus) {
    app.log.warn('REDIS_URL is not set: single-process mode with an in-process message bus; run one instance only')
    bus = createMemoryBus()
  }
  app.decorate('bus', bus)
  if (!opts.bus) app.addHook('onClose', () => bus.close())
}, { name: 'bus', dependencies: ['config'] })
