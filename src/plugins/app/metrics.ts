import fp from 'fastify-plugin'
import { timingSafeEqual } from 'node:crypto'
import { createMetrics, type Metrics } from '../../services/metrics/metrics.js'
import { notFound } from '../../http-errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** GET /metrics in Prometheus format; with METRICS_TOKEN set, only for `Authorization: Bearer <token>`. */
export default fp(async (app) => {
  const metrics = createMetrics()
  app.decorate('metrics', metrics)
  const { token, enabled } = app.config.metrics
  const expected = token ? Buffer.from(`Bearer ${token}`) : undefined
  // A reconnection is a connection back after a loss, not the first one at start.
  let busLost = false
  app.bus.onConnectionChange((connected) => {
    if (!connected) busLost = true
    else if (busLost) {
      busLost = false
      metrics.reconnects.inc({ service: 'redis' })
    }
  })
  app.database.onChange((available) => { if (available) metrics.reconnects.inc({ service: 'postgres' }) })
  for (const service of ['redis', 'postgres']) metrics.reconnects.inc({ service }, 0)

  if (!enabled) return
  app.get('/metrics', { schema: { hide: true }, config: { rateLimit: false } }, async (request, reply) => {
    if (expected) {
      const given = Buffer.from(request.headers.authorization ?? '')
      // Refused as if absent: the endpoint's existence is not advertised.
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw notFound('route')
    }
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}, { name: 'metrics', dependencies: ['config', 'bus', 'postgres'] })
