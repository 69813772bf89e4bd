import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'

/**
 * Requests per client address (the real one behind nginx when TRUST_PROXY is set). Counters live
 * in Redis when there is one, so every instance behind the load balancer counts together.
 */
export default fp(async (app) => {
  await app.register(rateLimit, {
    global: true,
    max: app.config.rateLimit.max,
    timeWindow: app.config.rateLimit.windowMs,
    redis: app.redis,
    nameSpace: 'nexa-rl:',
    skipOnError: true, // a Redis outage must not take the whole API down with it
    keyGenerator: (request) => request.ip,
    allowList: (request) => request.url === '/health' || request.url === '/ready',
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      error: 'Too Many Requests',
      code: 'too_many_requests',
      message: `Rate limit exceeded, retry in ${context.after}`,
    }),
  })
}, { name: 'rate-limit', dependencies: ['bus'] })
