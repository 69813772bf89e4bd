import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { tooManyRequests } from '../../http-errors.js'

/**
 * Requests per client address (the real one behind nginx when TRUST_PROXY is set). Counters live
 * in Redis when there is one, so every instance behind the load balancer counts together.
 * (Requests per user are counted once the user is known: see the auth plugin.)
 */
export default fp(async (app) => {
  await app.register(rateLimit, {
    // Not the plugin's per-route hooks: those run after the routes' own onRequest hooks, so a
    // request refused by authentication (or one for no route at all) would never be counted.
    global: false,
    max: app.config.rateLimit.max,
    timeWindow: app.config.rateLimit.windowMs,
    redis: app.redis,
    nameSpace: 'nexa-rl:',
    skipOnError: true, // a Redis outage must not take the whole API down with it
    keyGenerator: (request) => request.ip,
    allowList: (request) => request.url === '/health' || request.url === '/ready',
    // An HttpError, so the error handler answers it in the API's own shape (code too_many_requests).
    errorResponseBuilder: (_request, context) => tooManyRequests(context.ttl / 1000, `Rate limit exceeded, retry in ${context.after}`),
  })
  // One hook on the root instance, ahead of every other onRequest hook, for every route and the 404 handler.
  const perAddress = app.rateLimit()
  app.addHook('onRequest', async (request, reply) => {
    const own = request.routeOptions.config?.rateLimit
    if (own === false || typeof own === 'object') return // switched off, or the route's own limit applies
    await perAddress.call(app, request, reply)
  })
}, { name: 'rate-limit', dependencies: ['bus'] })
